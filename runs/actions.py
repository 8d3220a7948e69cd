"""Changing existing runs: cancel, reschedule, add tags."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction
from django.utils import timezone

from runs.durations import InvalidDuration, parse_delay_strict
from runs.errors import InvalidInput, Unprocessable
from runs.lifecycle import publish_changes, record_event, transition
from runs.models import Run, RunEvent, RunEventKind, RunTag
from runs.setsql import for_update, in_list, list_param, values_of
from runs.statuses import CANCELABLE, RunStatus
from runs.triggering import MAX_TAGS, normalize_tags

CANCEL_CHUNK = 5000
PARENT_CANCELED = "Parent run was canceled"


def cancel_runs(
    run_ids: Iterable[int], *, reason: str = "Canceled by user", cascade: bool = True
) -> list[int]:
    """Cancel every run in `run_ids` that has not finished, set-based: per chunk one
    guarded UPDATE (rows locked in id order) and one INSERT … SELECT of events.
    Executing runs are stopped by their worker, which sees the status change. Child
    runs of canceled runs are canceled too, level by level. Returns the ids that were
    canceled (finished runs are skipped)."""
    canceled: list[int] = []
    level = list(dict.fromkeys(run_ids))
    seen = set(level)
    while level:
        children: list[int] = []
        for start in range(0, len(level), CANCEL_CHUNK):
            done = _cancel_chunk(level[start : start + CANCEL_CHUNK], reason)
            canceled.extend(done)
            if cascade and done:
                children.extend(_cancelable_children(done))
        level = [pk for pk in dict.fromkeys(children) if pk not in seen]
        seen.update(level)
        reason = PARENT_CANCELED
    return canceled


def _cancelable_children(parent_ids: list[int]) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {Run._meta.db_table} "
            f"WHERE {in_list('parent_id')} AND {in_list('status')}",
            [list_param(parent_ids), list_param(CANCELABLE)],
        )
        return [pk for (pk,) in cursor.fetchall()]


def _cancel_chunk(run_ids: list[int], reason: str) -> list[int]:
    now = timezone.now()
    no_attributes = RunEvent._meta.get_field("attributes").get_db_prep_save(
        {}, connection
    )
    # Rows are locked in id order, as transition_many does, so set-based writers
    # never deadlock; the status guard is re-checked once a row lock is granted.
    # On PostgreSQL each id is one primary-key probe, whatever the statistics say:
    # right after a large batch of runs was queued they still describe a smaller
    # table, and `id = ANY(…)` / `id IN (SELECT …)` were then planned as a scan of
    # every unfinished run (a partial index) or of the whole table, per chunk.
    if connection.vendor == "postgresql":
        run_ids = sorted(run_ids)  # the order the probes lock them in
        locked_ids = (
            f"id = ANY(ARRAY(SELECT r.id FROM {values_of('bigint')} "
            f"CROSS JOIN LATERAL (SELECT id FROM {Run._meta.db_table} "
            f"WHERE id = value AND {in_list('status')} FOR UPDATE) AS r))"
        )
    else:
        locked_ids = (
            f"id IN (SELECT id FROM {Run._meta.db_table} WHERE {in_list('id')} "
            f"AND {in_list('status')} ORDER BY id{for_update()})"
        )
    cancel = (
        f"UPDATE {Run._meta.db_table} SET status = %s, status_reason = %s, "
        f"finished_at = %s, updated_at = %s WHERE {locked_ids} "
        "RETURNING id, environment_id"
    )
    cancel_params = [
        RunStatus.CANCELED,
        reason[:255],
        now,
        now,
        list_param(run_ids),
        list_param(CANCELABLE),
    ]
    insert_events = (
        f"INSERT INTO {RunEvent._meta.db_table} (run_id, environment_id, kind, "
        "status, level, message, attributes, created_at) "
        "SELECT id, environment_id, %s, %s, '', %s, %s, %s FROM {source} "
        "RETURNING id, run_id, environment_id"
    )
    event_params = [RunEventKind.STATUS, RunStatus.CANCELED, reason, no_attributes, now]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement: the events are made from the UPDATE's RETURNING rows
            # instead of looking the canceled runs up again.
            cursor.execute(
                f"WITH canceled AS ({cancel}) "
                + insert_events.format(source="canceled"),
                cancel_params + event_params,
            )
        else:
            cursor.execute(cancel, cancel_params)
            ids = [pk for pk, _ in cursor.fetchall()]
            if not ids:
                return []
            cursor.execute(
                insert_events.format(
                    source=f"{Run._meta.db_table} WHERE {in_list('id')}"
                ),
                [*event_params, list_param(ids)],
            )
        rows = cursor.fetchall()
        publish_changes(
            [
                (run_id, environment_id, RunEventKind.STATUS, event_id)
                for event_id, run_id, environment_id in rows
            ]
        )
    return [run_id for _, run_id, _ in rows]


def cancel_run(run: Run, *, reason: str = "Canceled by user") -> bool:
    """Cancel one run (and its in-progress children). False when it had already finished."""
    return run.pk in cancel_runs([run.pk], reason=reason)


def reschedule(run: Run, delay) -> Run:
    """Move a DELAYED run's due time. Past or unparsable delays are rejected."""
    if run.status != RunStatus.DELAYED:
        raise InvalidInput("Cannot reschedule a run that is not delayed")
    try:
        when = parse_delay_strict(delay)
    except InvalidDuration as exc:
        raise InvalidInput(str(exc)) from None
    if when is None:
        raise InvalidInput(f"Invalid delay: {delay}")
    fields = {"delay_until": when}
    if run.ttl_expires_at and run.delay_until:
        fields["ttl_expires_at"] = run.ttl_expires_at + (when - run.delay_until)
    if not transition(
        run.pk,
        RunStatus.DELAYED,
        allowed_from=[RunStatus.DELAYED],
        message=f"Rescheduled to {when.isoformat()}",
        **fields,
    ):
        raise InvalidInput("Cannot reschedule a run that is not delayed")
    run.refresh_from_db()
    return run


def add_tags(run: Run, tags: list[str] | str) -> str:
    """Add tags to a run (finished runs too). Returns the API's message."""
    new = [t for t in normalize_tags(tags) if t not in run.tags] if tags else []
    if not new:
        return "No new tags to add"
    with transaction.atomic():
        current = (
            Run.objects.select_for_update()
            .values_list("tags", flat=True)
            .get(pk=run.pk)
        )
        new = [t for t in new if t not in current]
        if len(current) + len(new) > MAX_TAGS:
            missing = ", ".join(f"'{t}'" for t in new)
            raise Unprocessable(
                f"Runs can only have 10 tags, you're trying to set {len(current) + len(new)}. "
                f"These tags have not been set: {missing}."
            )
        merged = sorted([*current, *new])
        Run.objects.filter(pk=run.pk).update(tags=merged, updated_at=timezone.now())
        RunTag.objects.bulk_create(
            RunTag(
                run_id=run.pk,
                environment_id=run.environment_id,
                tag=t,
                created_at=run.created_at,
            )
            for t in new
        )
        record_event(
            run.pk,
            run.environment_id,
            RunEventKind.TAGS,
            message="Tags added",
            attributes={"tags": new},
        )
    run.tags = merged
    return f"Successfully set {len(new)} new tags."
