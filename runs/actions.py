"""Changing existing runs: cancel, reschedule, add tags."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from runs.durations import InvalidDuration, parse_delay_strict
from runs.errors import InvalidInput, Unprocessable
from runs.lifecycle import record_event, record_events, transition
from runs.models import Run, RunEvent, RunEventKind, RunTag
from runs.statuses import CANCELABLE, RunStatus
from runs.triggering import MAX_TAGS, normalize_tags

CANCEL_CHUNK = 1000


def cancel_runs(
    run_ids: Iterable[int], *, reason: str = "Canceled by user", cascade: bool = True
) -> list[int]:
    """Cancel every run in `run_ids` that has not finished, set-based: one locking SELECT
    and one guarded UPDATE per chunk, then one bulk insert of events. Executing runs
    are stopped by their worker, which sees the status change. Child runs of canceled
    runs are canceled too. Returns the ids that were canceled (finished runs are skipped).
    """
    canceled: list[int] = []
    pending = list(dict.fromkeys(run_ids))
    while pending:
        chunk, pending = pending[:CANCEL_CHUNK], pending[CANCEL_CHUNK:]
        done = _cancel_chunk(chunk, reason)
        canceled.extend(done)
        if cascade and done:
            children = list(
                Run.objects.filter(
                    parent_id__in=done, status__in=CANCELABLE
                ).values_list("pk", flat=True)
            )
            pending.extend(c for c in children if c not in pending)
            reason = "Parent run was canceled"
    return canceled


def _cancel_chunk(run_ids: list[int], reason: str) -> list[int]:
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            Run.objects.select_for_update()
            .filter(pk__in=run_ids, status__in=CANCELABLE)
            .order_by("pk")
            .values_list("pk", "environment_id")
        )
        if not rows:
            return []
        ids = [pk for pk, _ in rows]
        Run.objects.filter(pk__in=ids, status__in=CANCELABLE).update(
            status=RunStatus.CANCELED,
            status_reason=reason,
            finished_at=now,
            updated_at=now,
        )
        record_events(
            [
                RunEvent(
                    run_id=pk,
                    environment_id=env_id,
                    kind=RunEventKind.STATUS,
                    status=RunStatus.CANCELED,
                    message=reason,
                    created_at=now,
                )
                for pk, env_id in rows
            ]
        )
    return ids


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
