"""Time-driven transitions, run by every worker (safe in parallel: each step locks its
rows with SKIP LOCKED and moves them with a guarded, set-based transition).

- DELAYED runs whose delay has passed → QUEUED
- WAITING runs whose retry time has come → QUEUED
- QUEUED / PENDING_VERSION runs past their TTL → EXPIRED
- runs whose worker stopped heart-beating → QUEUED again (attempts left) or CRASHED
- pending bulk actions advance by one chunk
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from runs import bulk
from runs.lifecycle import transition_many
from runs.models import Attempt, AttemptStatus, Run
from runs.statuses import RunStatus

CHUNK = 500


def tick() -> int:
    """One pass of every schedule; returns how many runs changed."""
    return (
        promote_due(RunStatus.DELAYED, "delay_until", "Delay elapsed")
        + promote_due(RunStatus.WAITING, "retry_at", "Retrying")
        + expire_ttl()
        + recover_stale()
        + bulk.run_pending_bulk_actions()
    )


def _due(status: str, field: str, now) -> list[tuple[int, int]]:
    with transaction.atomic():
        return list(
            Run.objects.select_for_update(skip_locked=True)
            .filter(status=status, **{f"{field}__lte": now})
            .order_by(field)
            .values_list("pk", "priority_ms")[:CHUNK]
        )


def promote_due(status: str, field: str, message: str) -> int:
    now = timezone.now()
    rows = _due(status, field, now)
    if not rows:
        return 0
    by_priority: dict[int, list[int]] = defaultdict(list)
    for pk, priority_ms in rows:
        by_priority[priority_ms].append(pk)
    moved = 0
    for priority_ms, ids in by_priority.items():
        moved += len(
            transition_many(
                ids,
                RunStatus.QUEUED,
                allowed_from=[status],
                message=message,
                queued_at=now,
                queue_timestamp=now - timedelta(milliseconds=priority_ms),
                retry_at=None,
            )
        )
    return moved


def expire_ttl() -> int:
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Run.objects.select_for_update(skip_locked=True)
            .filter(
                status__in=[RunStatus.QUEUED, RunStatus.PENDING_VERSION],
                ttl_expires_at__lte=now,
            )
            .values_list("pk", flat=True)[:CHUNK]
        )
        if not ids:
            return 0
        return len(
            transition_many(
                ids,
                RunStatus.EXPIRED,
                message="Run was not started before its TTL",
                expired_at=now,
                finished_at=now,
            )
        )


def recover_stale() -> int:
    """Runs held by a worker that stopped heart-beating (killed, lost its database)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.RUNWATCH_HEARTBEAT_TIMEOUT_SECONDS)
    with transaction.atomic():
        rows = list(
            Run.objects.select_for_update(skip_locked=True)
            .filter(
                status__in=[RunStatus.DEQUEUED, RunStatus.EXECUTING, RunStatus.WAITING],
                heartbeat_at__lt=cutoff,
            )
            .exclude(worker_id="")
            .values_list("pk", "attempt_count", "max_attempts", "worker_id")[:CHUNK]
        )
        if not rows:
            return 0
        retry = [pk for pk, count, limit, _ in rows if count < limit]
        final = [pk for pk, count, limit, _ in rows if count >= limit]
        Attempt.objects.filter(
            run_id__in=[r[0] for r in rows], completed_at__isnull=True
        ).update(status=AttemptStatus.CRASHED, completed_at=now)
        error = {
            "name": "WorkerLost",
            "message": "The worker running this attempt stopped responding",
            "stack": "",
        }
        moved = transition_many(
            retry,
            RunStatus.QUEUED,
            message="Worker lost, retrying",
            attributes={"error": error},
            queued_at=now,
            queue_timestamp=now,
            worker_id="",
            heartbeat_at=None,
            error=error,
        )
        moved += transition_many(
            final,
            RunStatus.CRASHED,
            message="Worker lost and no attempts left",
            attributes={"error": error},
            finished_at=now,
            worker_id="",
            heartbeat_at=None,
            error=error,
        )
    return len(moved)
