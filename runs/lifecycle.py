"""The one way to change a run's status.

`transition` is a single conditional UPDATE (`… WHERE status IN (allowed)`), so two
racing writers (cancel vs complete, two workers, expiry vs dequeue) resolve to exactly
one winner. The winner writes a RunEvent in the same transaction and the change is
published after commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
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
    message: str = "",
    attributes: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Move run `run_id` to status `to` if its current status is in `allowed_from`
    (default: every status `to` may legally follow). Extra `fields` are written in
    the same UPDATE. Returns False when the run was not in an allowed status, i.e.
    someone else won the race.
    """
    allowed = check_allowed(
        to, ALLOWED_FROM[to] if allowed_from is None else allowed_from
    )
    now = timezone.now()
    with transaction.atomic():
        updated = Run.objects.filter(pk=run_id, status__in=allowed).update(
            status=to, updated_at=now, **fields
        )
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


def record_event(
    run_id: int,
    environment_id: int,
    kind: str,
    *,
    status: str = "",
    level: str = "",
    message: str = "",
    attributes: dict[str, Any] | None = None,
    at=None,
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
    publish_on_commit(run_id, environment_id, kind, event.pk)
    return event


def record_events(events: list[RunEvent]) -> None:
    """Bulk variant of record_event for set-based work (batch trigger, bulk cancel)."""
    if not events:
        return
    created = RunEvent.objects.bulk_create(events)
    for event in created:
        publish_on_commit(event.run_id, event.environment_id, event.kind, event.pk)


def publish_on_commit(
    run_id: int, environment_id: int, kind: str, event_id: int | None = None
) -> None:
    transaction.on_commit(
        lambda: run_changed(
            {
                "run_id": run_id,
                "environment_id": environment_id,
                "kind": kind,
                "event_id": event_id,
            }
        )
    )
