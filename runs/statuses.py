"""Run statuses: the public names of Trigger.dev's run object, their groups and
the only legal transitions between them.

Every status change in Runwatch goes through `runs.lifecycle.transition`, which
checks its `allowed_from` against `ALLOWED_FROM` below.
"""

from __future__ import annotations

from django.db import models


class RunStatus(models.TextChoices):
    PENDING_VERSION = (
        "PENDING_VERSION",
        "Pending version",
    )  # no deployment has the task yet
    DELAYED = "DELAYED", "Delayed"  # waiting for its delay to pass
    QUEUED = "QUEUED", "Queued"  # ready, waiting for a worker
    DEQUEUED = "DEQUEUED", "Dequeued"  # claimed by a worker, attempt starting
    EXECUTING = "EXECUTING", "Executing"  # an attempt is running
    WAITING = (
        "WAITING",
        "Waiting",
    )  # between attempts (retry backoff) or waiting on a child run
    COMPLETED = "COMPLETED", "Completed"  # finished successfully
    CANCELED = (
        "CANCELED",
        "Canceled",
    )  # canceled by a user, an API call or a bulk action
    FAILED = "FAILED", "Failed"  # task code raised and no attempts are left
    CRASHED = "CRASHED", "Crashed"  # the attempt process died (os._exit, segfault, OOM)
    SYSTEM_FAILURE = (
        "SYSTEM_FAILURE",
        "System failure",
    )  # Runwatch itself failed the run
    EXPIRED = "EXPIRED", "Expired"  # not started before its TTL
    TIMED_OUT = "TIMED_OUT", "Timed out"  # exceeded max duration
    INTERRUPTED = (
        "INTERRUPTED",
        "Interrupted",
    )  # stopped by a shutdown it could not recover from


S = RunStatus

DESCRIPTIONS: dict[str, str] = {
    S.PENDING_VERSION: "Task is waiting for a version update because it cannot execute without additional information (task, queue, etc.).",
    S.DELAYED: "Task has been delayed and is waiting to be executed.",
    S.QUEUED: "Task is waiting to be executed.",
    S.DEQUEUED: "Task has been dequeued from the queue but is not yet executing.",
    S.EXECUTING: "Task is currently being executed.",
    S.WAITING: "Task is waiting: for a retry after a failed attempt, or for a child run to finish.",
    S.COMPLETED: "Task has been successfully completed.",
    S.CANCELED: "Task has been canceled.",
    S.FAILED: "Task has failed to complete, due to an error in the code.",
    S.CRASHED: "Task has crashed and won't be retried, most likely the worker ran out of resources.",
    S.SYSTEM_FAILURE: "Task has failed to complete, due to an error in the system.",
    S.EXPIRED: "Task has surpassed its ttl and won't be executed.",
    S.TIMED_OUT: "Task has reached its maxDuration and has been stopped.",
    S.INTERRUPTED: "Task was interrupted during execution, mostly this happens in development environments.",
}

FINISHED = frozenset(
    {
        S.COMPLETED,
        S.CANCELED,
        S.FAILED,
        S.CRASHED,
        S.SYSTEM_FAILURE,
        S.EXPIRED,
        S.TIMED_OUT,
        S.INTERRUPTED,
    }
)
FAILED = frozenset({S.FAILED, S.CRASHED, S.SYSTEM_FAILURE, S.TIMED_OUT, S.INTERRUPTED})
CANCELABLE = frozenset(set(S) - FINISHED)
ACTIVE = CANCELABLE
# Fixed orders for SQL built from sets: a partial index serves a query only when the
# query repeats the index's condition, so both use these tuples.
UNFINISHED_SORTED = tuple(sorted(ACTIVE))
HOLDING = (S.DEQUEUED, S.EXECUTING, S.WAITING)  # a worker holds the run
EXPIRABLE = (S.PENDING_VERSION, S.QUEUED)  # the TTL clock runs

# Filter groups used by the dashboard, the API and bulk actions.
GROUPS: dict[str, frozenset[str]] = {
    "queued": frozenset({S.PENDING_VERSION, S.DELAYED, S.QUEUED}),
    "running": frozenset({S.DEQUEUED, S.EXECUTING}),
    "waiting": frozenset({S.WAITING}),
    "finished": FINISHED,
    "failed": FAILED,
}

# Status → the statuses it may be entered from. The lifecycle refuses anything else.
ALLOWED_FROM: dict[str, frozenset[str]] = {
    S.PENDING_VERSION: frozenset(),
    S.DELAYED: frozenset({S.DELAYED}),  # reschedule
    S.QUEUED: frozenset(
        {S.PENDING_VERSION, S.DELAYED, S.WAITING, S.DEQUEUED, S.EXECUTING}
    ),
    S.DEQUEUED: frozenset({S.QUEUED}),
    S.EXECUTING: frozenset({S.DEQUEUED, S.WAITING}),
    S.WAITING: frozenset({S.EXECUTING}),
    S.COMPLETED: frozenset({S.EXECUTING}),
    S.FAILED: frozenset({S.EXECUTING, S.WAITING}),
    S.CRASHED: frozenset({S.DEQUEUED, S.EXECUTING, S.WAITING}),
    S.SYSTEM_FAILURE: frozenset(
        {S.PENDING_VERSION, S.DELAYED, S.QUEUED, S.DEQUEUED, S.EXECUTING, S.WAITING}
    ),
    S.TIMED_OUT: frozenset({S.EXECUTING}),
    S.EXPIRED: frozenset({S.QUEUED, S.PENDING_VERSION}),
    S.CANCELED: CANCELABLE,
    S.INTERRUPTED: frozenset({S.DEQUEUED, S.EXECUTING, S.WAITING}),
}

# Trigger.dev SDK ≥ 4 sends `x-trigger-api-version: 2025-07-16` and gets these names as they are.
# Without the header the API answers with the legacy enum (reference §1.3).
LEGACY_NAMES: dict[str, str] = {S.DEQUEUED: "EXECUTING", S.WAITING: "FROZEN"}
# Legacy names accepted as filter input → our statuses.
LEGACY_INPUT: dict[str, frozenset[str]] = {
    "WAITING_FOR_DEPLOY": frozenset({S.PENDING_VERSION}),
    "REATTEMPTING": frozenset({S.WAITING}),
    "FROZEN": frozenset({S.WAITING}),
    "PENDING": frozenset({S.QUEUED}),
}


def public_status(status: str, *, legacy: bool = False) -> str:
    """The status name the API shows: v2 names, or the legacy enum for old clients."""
    if legacy:
        return LEGACY_NAMES.get(status, status)
    if status == S.INTERRUPTED:
        return S.FAILED  # the v2 public enum has no INTERRUPTED
    return status


def parse_status_names(names: list[str]) -> tuple[set[str], list[str]]:
    """Expand status names, legacy names and group names; return (statuses, unknown names).

    Exact spellings win: `FAILED` is the status, `failed` the group (FAILED, CRASHED,
    SYSTEM_FAILURE, TIMED_OUT, INTERRUPTED); other casings fall back to the status."""
    statuses: set[str] = set()
    unknown: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name in S.values:
            statuses.add(name)
        elif name in GROUPS:
            statuses |= GROUPS[name]
        elif name.upper() in S.values:
            statuses.add(name.upper())
        elif name.lower() in GROUPS:
            statuses |= GROUPS[name.lower()]
        elif name.upper() in LEGACY_INPUT:
            statuses |= LEGACY_INPUT[name.upper()]
        else:
            unknown.append(name)
    return statuses, unknown


def boolean_helpers(status: str) -> dict[str, bool]:
    """The is* flags of the API's run objects (EXPIRED and TIMED_OUT count as completed,
    so the SDK's runs.poll() stops on them)."""
    completed = status in FINISHED
    return {
        "isQueued": status in {S.QUEUED, S.DELAYED, S.PENDING_VERSION},
        "isExecuting": status in {S.EXECUTING, S.DEQUEUED},
        "isWaiting": status == S.WAITING,
        "isCompleted": completed,
        "isSuccess": status == S.COMPLETED,
        "isFailed": completed and status != S.COMPLETED,
        "isCancelled": status == S.CANCELED,
    }
