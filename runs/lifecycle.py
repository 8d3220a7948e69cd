"""The one way to change a run's status.

`transition` is a single conditional UPDATE (`… WHERE status IN (allowed)`), so two
racing writers (cancel vs complete, two workers, expiry vs dequeue) resolve to exactly
one winner. The winner writes a RunEvent in the same transaction and the change is
published after commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from realtime.publish import run_changed
from runs.models import Run, RunEvent, RunEventKind
from runs.statuses import ALLOWED_FROM, RunStatus


class IllegalTransition(ValueError):
    pass


def check_allowed(to: str, allowed_from: Iterable[str]) -> frozenset[str]:
    allowed = frozenset(allowed_from)
    illegal = allowed - ALLOWED_FROM[to]
    if illegal:
        raise IllegalTransition(
            f"{', '.join(sorted(illegal))} → {to} is not a legal transition"
        )
    return allowed


def transition(
    run_id: int,
    to: RunStatus | str,
    *,
    allowed_from: Iterable[str] | None = None,
    where: Q | None = None,
    message: str = "",
    attributes: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Move run `run_id` to status `to` if its current status is in `allowed_from`
    (default: every status `to` may legally follow) and it matches `where` (e.g. the
    worker and attempt that hold it). Extra `fields` are written in the same UPDATE.
    Returns False when the run did not qualify, i.e. someone else won the race.
    """
    allowed = check_allowed(
        to, ALLOWED_FROM[to] if allowed_from is None else allowed_from
    )
    now = timezone.now()
    runs = Run.objects.filter(pk=run_id, status__in=allowed)
    if where is not None:
        runs = runs.filter(where)
    with transaction.atomic():
        updated = runs.update(status=to, updated_at=now, **fields)
        if updated != 1:
            return False
        environment_id = Run.objects.values_list("environment_id", flat=True).get(
            pk=run_id
        )
        record_event(
            run_id,
            environment_id,
            RunEventKind.STATUS,
            status=to,
            message=message,
            attributes=attributes,
            at=now,
        )
    return True


def transition_many(
    run_ids: Iterable[int],
    to: RunStatus | str,
    *,
    allowed_from: Iterable[str] | None = None,
    where: Q | None = None,
    message: str = "",
    attributes: dict[str, Any] | None = None,
    per_run: dict[int, dict[str, Any]] | None = None,
    **fields: Any,
) -> list[int]:
    """Set-based `transition`: lock the runs still in an allowed status (and matching
    `where`), move them all with one UPDATE (plus one bulk UPDATE for `per_run` values
    such as outputs) and one bulk insert of events. Returns the ids that moved; the
    others lost a race.
    """
    allowed = check_allowed(
        to, ALLOWED_FROM[to] if allowed_from is None else allowed_from
    )
    now = timezone.now()
    candidates = Run.objects.filter(pk__in=list(run_ids), status__in=allowed)
    if where is not None:
        candidates = candidates.filter(where)
    with transaction.atomic():
        rows = list(
            candidates.select_for_update()
            .order_by("pk")
            .values_list("pk", "environment_id")
        )
        if not rows:
            return []
        ids = [pk for pk, _ in rows]
        Run.objects.filter(pk__in=ids).update(status=to, updated_at=now, **fields)
        if per_run:
            _update_per_run(ids, per_run)
        record_events(
            [
                RunEvent(
                    run_id=pk,
                    environment_id=env_id,
                    kind=RunEventKind.STATUS,
                    status=to,
                    message=message,
                    attributes=attributes or {},
                    created_at=now,
                )
                for pk, env_id in rows
            ]
        )
    return ids


def _update_per_run(ids: list[int], per_run: dict[int, dict[str, Any]]) -> None:
    """One `UPDATE … FROM (VALUES …)` writing different values per run (outputs,
    durations); every run in `per_run` must carry the same field names."""
    rows = [(pk, per_run[pk]) for pk in ids if pk in per_run]
    if not rows:
        return
    names = sorted(rows[0][1])
    fields = [Run._meta.get_field(name) for name in names]
    connection = transaction.get_connection()
    casts = ["CAST(%s AS bigint)"] + [
        f"CAST(%s AS {field.cast_db_type(connection)})" for field in fields
    ]
    row_sql = f"({', '.join(casts)})"
    params: list[Any] = []
    for pk, values in rows:
        params.append(pk)
        params.extend(
            field.get_db_prep_save(values[field.name], connection) for field in fields
        )
    table = Run._meta.db_table
    columns = [field.column for field in fields]
    assignments = ", ".join(f'"{c}" = v."{c}"' for c in columns)
    sql = (
        f'WITH v("id", {", ".join(f'"{c}"' for c in columns)}) AS '
        f"(VALUES {', '.join([row_sql] * len(rows))}) "
        f'UPDATE "{table}" SET {assignments} FROM v WHERE "{table}"."id" = v."id"'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def record_event(
    run_id: int,
    environment_id: int,
    kind: str,
    *,
    status: str = "",
    level: str = "",
    message: str = "",
    attributes: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> RunEvent:
    """Write one history row for a run and publish it after commit."""
    event = RunEvent.objects.create(
        run_id=run_id,
        environment_id=environment_id,
        kind=kind,
        status=status,
        level=level,
        message=message,
        attributes=attributes or {},
        created_at=at or timezone.now(),
    )
    _publish_on_commit([event])
    return event


def record_events(events: list[RunEvent]) -> None:
    """Bulk variant of record_event for set-based work (batch trigger, bulk cancel)."""
    if not events:
        return
    _publish_on_commit(RunEvent.objects.bulk_create(events))


def _publish_on_commit(events: list[RunEvent]) -> None:
    publish_changes(
        [(e.run_id, e.environment_id, e.kind, e.pk) for e in events],
        queued=any(e.status == RunStatus.QUEUED for e in events),
    )


def publish_changes(
    changes: list[tuple[int, int, str, int | None]], *, queued: bool = False
) -> None:
    """After commit, announce (run id, environment id, kind, event id) changes: one
    on-commit callback and at most one NOTIFY per channel, however many changes (a
    batch of 1,000 runs must not queue 1,000 callbacks). `queued`: some run became
    QUEUED, wake the workers."""
    if not changes:
        return
    notify_on_commit(EVENTS_CHANNEL)
    if queued:
        notify_on_commit(QUEUE_CHANNEL)
    payloads = [
        {"run_id": run_id, "environment_id": env_id, "kind": kind, "event_id": event_id}
        for run_id, env_id, kind, event_id in changes
    ]
    transaction.on_commit(lambda: _announce(payloads))


def _announce(changes: list[dict]) -> None:
    for change in changes:
        run_changed(change)


def queue_runs(
    rows: Iterable[tuple[int, int]],
    *,
    allowed_from: Iterable[str],
    message: str,
    now: datetime | None = None,
    **fields: Any,
) -> list[int]:
    """Move runs to QUEUED, each at its place in the claim order: `rows` are
    (run id, priority_ms) and a run with priority p is claimed as if it had been
    queued p ms earlier. One set-based transition per distinct priority."""
    now = now or timezone.now()
    by_priority: dict[int, list[int]] = defaultdict(list)
    for pk, priority_ms in rows:
        by_priority[priority_ms].append(pk)
    moved: list[int] = []
    for priority_ms, ids in sorted(by_priority.items()):
        moved += transition_many(
            ids,
            RunStatus.QUEUED,
            allowed_from=allowed_from,
            message=message,
            queued_at=now,
            queue_timestamp=now - timedelta(milliseconds=priority_ms),
            **fields,
        )
    return moved


# PostgreSQL wake-ups: workers LISTEN on QUEUE_CHANNEL (a run became QUEUED), each
# server's realtime relay on EVENTS_CHANNEL (new RunEvent rows to read).
QUEUE_CHANNEL = "runwatch_queue"
EVENTS_CHANNEL = "runwatch_events"


class _Notify:
    """One statement NOTIFYing every channel a transaction touched (workers first)."""

    def __init__(self, channel: str) -> None:
        self.channels = [channel]

    def add(self, channel: str) -> None:
        if channel not in self.channels:
            self.channels.append(channel)

    def __call__(self) -> None:
        ordered = sorted(self.channels, key=lambda c: c != QUEUE_CHANNEL)
        with transaction.get_connection().cursor() as cursor:
            cursor.execute("; ".join(f"NOTIFY {channel}" for channel in ordered))


def notify_on_commit(channel: str) -> None:
    """NOTIFY `channel` once after the current transaction commits (PostgreSQL only)."""
    if not settings.IS_POSTGRES:
        return
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        for _, callback, _ in connection.run_on_commit:
            if isinstance(callback, _Notify):
                callback.add(channel)
                return
    transaction.on_commit(_Notify(channel))
