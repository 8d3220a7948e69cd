"""How attempts end: completed, failed (retry or final), crashed, timed out, canceled
under the worker's feet, or interrupted by a shutdown (requeued).

Every write is guarded twice: by status (an outcome that races a cancel loses, the
run stays CANCELED) and by holder (the worker and attempt number that claimed the
run), so a late outcome from a worker that lost its lease can never touch a run
another worker has claimed since. `write` applies a list of outcomes in one
transaction, so a worker can keep them and retry after a database error.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from runs.engine import pgsql
from runs.lifecycle import queue_runs, transition, transition_many
from runs.models import Attempt, AttemptStatus, Run
from runs.statuses import HOLDING, RunStatus

NO_RETRY_ERRORS = {"AbortTaskRunError", "MetadataTooLarge", "OutputTooLarge"}
REQUEUE = "REQUEUE"  # an Outcome status: back to the queue, not a run status


@dataclass
class Finished:
    """One attempt that ended, waiting to be written."""

    run_id: int
    attempt_id: int
    attempt: int
    max_attempts: int
    duration_ms: int  # total compute time including this attempt
    worker_id: str
    priority_ms: int = 0
    output: str | None = None
    error: dict | None = None


@dataclass
class Outcome:
    """What to write for a Finished attempt: `status` is COMPLETED, FAILED (retried
    while attempts remain), CRASHED, TIMED_OUT, CANCELED (the run was canceled while
    executing) or REQUEUE (the worker stopped; the run goes back to the queue)."""

    result: Finished
    status: str
    retry_policy: dict | None = None
    reason: str = ""


def write(outcomes: list[Outcome]) -> None:
    """Apply outcomes in order, all or nothing (safe to retry after a DatabaseError)."""
    if not outcomes:
        return
    with transaction.atomic(savepoint=False):
        completed = [o.result for o in outcomes if o.status == RunStatus.COMPLETED]
        complete(completed)
        for outcome in outcomes:
            result, status = outcome.result, outcome.status
            if status == RunStatus.FAILED:
                fail(result, outcome.retry_policy or {})
            elif status in (RunStatus.CRASHED, RunStatus.TIMED_OUT):
                end_abnormally(result, status, result.error or {})
            elif status == RunStatus.CANCELED:
                close_canceled(result)
            elif status == REQUEUE:
                interrupt(result, outcome.reason or "Worker stopped")


def held_by(result: Finished) -> Q:
    return Q(worker_id=result.worker_id, attempt_count=result.attempt)


def complete(results: list[Finished]) -> list[int]:
    """Write a set of successful attempts: one locking SELECT, two UPDATEs, one INSERT
    (on PostgreSQL one statement, see pgsql.complete). Returns the ids completed."""
    if not results:
        return []
    now = timezone.now()
    workers = {r.worker_id for r in results}
    if connection.vendor == "postgresql" and len(workers) == 1:
        return pgsql.complete(results, workers.pop(), now)
    by_id = {r.run_id: r for r in results}
    with transaction.atomic(savepoint=False):
        moved = transition_many(
            by_id,
            RunStatus.COMPLETED,
            allowed_from=[RunStatus.EXECUTING],
            where=reduce(or_, (Q(pk=r.run_id) & held_by(r) for r in results)),
            per_run={
                r.run_id: {"output": r.output, "duration_ms": r.duration_ms}
                for r in results
            },
            finished_at=now,
            worker_id="",
            output_type="application/json",
        )
        done = set(moved)
        _close_attempts([by_id[pk] for pk in moved], AttemptStatus.COMPLETED, now)
        _close_attempts(
            [r for r in results if r.run_id not in done], AttemptStatus.CANCELED, now
        )
    return moved


def fail(result: Finished, retry_policy: dict) -> str:
    """A raised attempt: WAITING with a retry time while attempts remain, else FAILED.
    Returns the new status, or "" when the run had moved on (canceled, recovered)."""
    now = timezone.now()
    error = result.error or {}
    retry = (
        result.attempt < result.max_attempts
        and error.get("name") not in NO_RETRY_ERRORS
    )
    common = {
        "allowed_from": [RunStatus.EXECUTING],
        "where": held_by(result),
        "attributes": {"error": error},
        "error": error,
        "worker_id": "",
        "duration_ms": result.duration_ms,
    }
    with transaction.atomic():
        if retry:
            delay = backoff_seconds(result.attempt, retry_policy)
            status = RunStatus.WAITING
            moved = transition(
                result.run_id,
                status,
                message=f"Attempt {result.attempt} failed: {error.get('message', '')[:200]}. "
                f"Retrying in {delay:.1f}s",
                retry_at=now + timedelta(seconds=delay),
                **common,
            )
        else:
            status = RunStatus.FAILED
            moved = transition(
                result.run_id,
                status,
                message=error.get("message", "")[:500],
                finished_at=now,
                **common,
            )
        _close_attempt(
            result, AttemptStatus.FAILED if moved else AttemptStatus.CANCELED, now
        )
    return status if moved else ""


def end_abnormally(result: Finished, status: str, error: dict) -> bool:
    """CRASHED (the attempt process died) or TIMED_OUT (max duration). Final."""
    now = timezone.now()
    attempt_status = {
        RunStatus.CRASHED: AttemptStatus.CRASHED,
        RunStatus.TIMED_OUT: AttemptStatus.TIMED_OUT,
    }[status]
    result.error = error
    with transaction.atomic():
        moved = transition(
            result.run_id,
            status,
            allowed_from=HOLDING
            if status == RunStatus.CRASHED
            else [RunStatus.EXECUTING],
            where=held_by(result),
            message=error["message"],
            attributes={"error": error},
            error=error,
            finished_at=now,
            worker_id="",
            duration_ms=result.duration_ms,
        )
        _close_attempt(result, attempt_status if moved else AttemptStatus.CANCELED, now)
    return moved


def close_canceled(result: Finished) -> None:
    """The run was canceled while executing: record the attempt's end."""
    now = timezone.now()
    _close_attempt(result, AttemptStatus.CANCELED, now)
    Run.objects.filter(held_by(result), pk=result.run_id).update(
        duration_ms=result.duration_ms, worker_id=""
    )


def interrupt(result: Finished, reason: str) -> bool:
    """The worker stopped before the attempt ended: put the run back in the queue.
    The attempt counts (it ran), like Trigger.dev's retry after a lost worker."""
    now = timezone.now()
    with transaction.atomic():
        moved = queue_runs(
            [(result.run_id, result.priority_ms)],
            allowed_from=HOLDING,
            where=held_by(result),
            message=reason,
            now=now,
            worker_id="",
            heartbeat_at=None,
            duration_ms=result.duration_ms,
        )
        _close_attempt(result, AttemptStatus.INTERRUPTED, now)
    return bool(moved)


def backoff_seconds(attempt: int, policy: dict) -> float:
    """Trigger.dev's exponential backoff: min * factor^(attempt-1), capped, optionally
    randomized by up to 2x."""
    low = policy.get("minTimeoutInMs", 1000) / 1000
    high = policy.get("maxTimeoutInMs", 60000) / 1000
    factor = policy.get("factor", 2)
    delay = min(high, low * factor ** max(0, attempt - 1))
    if policy.get("randomize", True):
        delay = min(high, delay * (1 + random.random()))
    return max(0.0, delay)


def _close_attempt(result: Finished, status: str, now: datetime) -> None:
    # completed_at IS NULL: an attempt is closed once (recovery may have closed it).
    Attempt.objects.filter(pk=result.attempt_id, completed_at__isnull=True).update(
        status=status, completed_at=now, error=result.error
    )


def _close_attempts(results: list[Finished], status: str, now: datetime) -> None:
    if results:
        Attempt.objects.filter(
            pk__in=[r.attempt_id for r in results], completed_at__isnull=True
        ).update(status=status, completed_at=now)
