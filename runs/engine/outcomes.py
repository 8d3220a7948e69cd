"""How attempts end: completed, failed (retry or final), crashed, timed out, canceled.

Every function is set-based or one conditional transition, so an outcome that races
a cancel simply loses (the run stays CANCELED).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from runs.lifecycle import transition, transition_many
from runs.models import Attempt, AttemptStatus, Batch, BatchStatus, Run
from runs.statuses import FINISHED, RunStatus

NO_RETRY_ERRORS = {"AbortTaskRunError", "MetadataTooLarge"}


@dataclass
class Finished:
    """One attempt that returned or raised, waiting to be written."""

    run_id: int
    attempt_id: int
    attempt: int
    max_attempts: int
    duration_ms: int  # total compute time including this attempt
    output: str | None = None
    error: dict | None = None


def complete(results: list[Finished]) -> list[int]:
    """Write a set of successful attempts: one locking SELECT, two UPDATEs, one INSERT."""
    if not results:
        return []
    now = timezone.now()
    by_id = {r.run_id: r for r in results}
    with transaction.atomic():
        moved = transition_many(
            by_id,
            RunStatus.COMPLETED,
            allowed_from=[RunStatus.EXECUTING],
            per_run={
                r.run_id: {"output": r.output, "duration_ms": r.duration_ms}
                for r in results
            },
            finished_at=now,
            worker_id="",
            output_type="application/json",
        )
        _close_attempts(
            [by_id[pk].attempt_id for pk in moved], AttemptStatus.COMPLETED, now
        )
        _lost = [r.attempt_id for r in results if r.run_id not in set(moved)]
        _close_attempts(_lost, AttemptStatus.CANCELED, now)
    return moved


def fail(result: Finished, retry_policy: dict) -> str:
    """A raised attempt: WAITING with a retry time while attempts remain, else FAILED."""
    now = timezone.now()
    error = result.error or {}
    retry = (
        result.attempt < result.max_attempts
        and error.get("name") not in NO_RETRY_ERRORS
    )
    with transaction.atomic():
        if retry:
            delay = backoff_seconds(result.attempt, retry_policy)
            moved = transition(
                result.run_id,
                RunStatus.WAITING,
                allowed_from=[RunStatus.EXECUTING],
                message=f"Attempt {result.attempt} failed: {error.get('message', '')[:200]}. "
                f"Retrying in {delay:.1f}s",
                attributes={"error": error},
                error=error,
                retry_at=now + timedelta(seconds=delay),
                worker_id="",
                duration_ms=result.duration_ms,
            )
            status = RunStatus.WAITING
        else:
            moved = transition(
                result.run_id,
                RunStatus.FAILED,
                allowed_from=[RunStatus.EXECUTING],
                message=error.get("message", "")[:500],
                attributes={"error": error},
                error=error,
                finished_at=now,
                worker_id="",
                duration_ms=result.duration_ms,
            )
            status = RunStatus.FAILED
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
    with transaction.atomic():
        moved = transition(
            result.run_id,
            status,
            allowed_from=[RunStatus.DEQUEUED, RunStatus.EXECUTING, RunStatus.WAITING]
            if status == RunStatus.CRASHED
            else [RunStatus.EXECUTING],
            message=error["message"],
            attributes={"error": error},
            error=error,
            finished_at=now,
            worker_id="",
            duration_ms=result.duration_ms,
        )
        result.error = error
        _close_attempt(result, attempt_status if moved else AttemptStatus.CANCELED, now)
    return moved


def close_canceled(result: Finished) -> None:
    """The run was canceled while executing: record the attempt's end."""
    _close_attempt(result, AttemptStatus.CANCELED, timezone.now())
    Run.objects.filter(pk=result.run_id).update(
        duration_ms=result.duration_ms, worker_id=""
    )


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


def settle_batches(batch_ids: set[int]) -> None:
    """Mark batches COMPLETED once none of their runs is left unfinished."""
    if not batch_ids:
        return
    unfinished = Run.objects.filter(batch=OuterRef("pk")).exclude(status__in=FINISHED)
    Batch.objects.filter(pk__in=batch_ids, sealed=True).exclude(
        status=BatchStatus.COMPLETED
    ).exclude(Exists(unfinished)).update(
        status=BatchStatus.COMPLETED,
        completed_at=timezone.now(),
        updated_at=timezone.now(),
    )


def _close_attempt(result: Finished, status: str, now) -> None:
    Attempt.objects.filter(pk=result.attempt_id).update(
        status=status, completed_at=now, error=result.error
    )


def _close_attempts(attempt_ids: list[int], status: str, now) -> None:
    if attempt_ids:
        Attempt.objects.filter(pk__in=attempt_ids).update(
            status=status, completed_at=now
        )
