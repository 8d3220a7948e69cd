"""Time-driven transitions, run by every worker (safe in parallel: each step locks its
rows with SKIP LOCKED and moves them with a guarded, set-based transition).

- DELAYED runs whose delay has passed → QUEUED
- WAITING runs whose retry time has come → QUEUED
- QUEUED / PENDING_VERSION runs past their TTL → EXPIRED
- PENDING_VERSION runs whose task the current deployment has → QUEUED
- runs whose worker stopped heart-beating → QUEUED again (attempts left) or CRASHED
- batches whose runs have all finished → COMPLETED
- streamed batches not sealed within the seal timeout → ABORTED
- pending bulk actions advance by one chunk

Each sweep first looks without locking, so an idle system (and SQLite, where every
write transaction locks the whole file) pays one cheap indexed read per sweep.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from runs import bulk
from runs.deployments import release_stranded_pending
from runs.engine.batches import abort_unsealed_batches, settle_batches
from runs.lifecycle import queue_runs, transition_many
from runs.models import Attempt, AttemptStatus, Run
from runs.statuses import EXPIRABLE, HOLDING, RunStatus

CHUNK = 500


def tick() -> int:
    """One pass of every schedule; returns how many runs changed."""
    changed = (
        promote_due(RunStatus.DELAYED, "delay_until", "Delay elapsed")
        + promote_due(RunStatus.WAITING, "retry_at", "Retrying")
        + expire_ttl()
        + release_stranded_pending(timezone.now())
        + recover_stale()
        + bulk.run_pending_bulk_actions()
    )
    settle_batches()
    abort_unsealed_batches()
    return changed


def promote_due(status: str, field: str, message: str) -> int:
    now = timezone.now()
    due = Run.objects.filter(status=status, **{f"{field}__lte": now})
    if not due.exists():
        return 0
    with transaction.atomic():
        rows = list(
            due.select_for_update(skip_locked=True)
            .order_by(field)
            .values_list("pk", "priority_ms")[:CHUNK]
        )
        return len(
            queue_runs(
                rows, allowed_from=[status], message=message, now=now, retry_at=None
            )
        )


def expire_ttl() -> int:
    now = timezone.now()
    due = Run.objects.filter(status__in=EXPIRABLE, ttl_expires_at__lte=now)
    if not due.exists():
        return 0
    with transaction.atomic():
        ids = list(
            due.select_for_update(skip_locked=True).values_list("pk", flat=True)[:CHUNK]
        )
        return len(
            transition_many(
                ids,
                RunStatus.EXPIRED,
                allowed_from=EXPIRABLE,
                message="Run was not started before its TTL",
                expired_at=now,
                finished_at=now,
            )
        )


WORKER_LOST = {
    "name": "WorkerLost",
    "message": "The worker running this attempt stopped responding",
    "stack": "",
}


def recover_stale() -> int:
    """Runs held by a worker that stopped heart-beating (killed, lost its database):
    their open attempt becomes CRASHED, the run goes back to the queue while attempts
    remain, else it is CRASHED."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.RUNWATCH_HEARTBEAT_TIMEOUT_SECONDS)
    stale = Run.objects.filter(status__in=HOLDING, heartbeat_at__lt=cutoff).exclude(
        worker_id=""
    )
    if not stale.exists():
        return 0
    with transaction.atomic():
        rows = list(
            stale.select_for_update(skip_locked=True).values_list(
                "pk", "attempt_count", "max_attempts", "priority_ms"
            )[:CHUNK]
        )
        return _recover(rows, now)


def _recover(rows: list[tuple[int, int, int, int]], now: datetime) -> int:
    Attempt.objects.filter(
        run_id__in=[r[0] for r in rows], completed_at__isnull=True
    ).update(status=AttemptStatus.CRASHED, completed_at=now, error=WORKER_LOST)
    lost = {
        "allowed_from": HOLDING,
        "attributes": {"error": WORKER_LOST},
        "worker_id": "",
        "heartbeat_at": None,
        "error": WORKER_LOST,
    }
    moved = queue_runs(
        [(pk, priority) for pk, count, limit, priority in rows if count < limit],
        message="Worker lost, retrying",
        now=now,
        **lost,
    )
    moved += transition_many(
        [pk for pk, count, limit, _ in rows if count >= limit],
        RunStatus.CRASHED,
        message="Worker lost and no attempts left",
        finished_at=now,
        **lost,
    )
    return len(moved)
