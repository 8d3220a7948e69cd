"""Bulk actions: cancel or replay many runs, chosen by a filter or by hand.

Submitting (`create_bulk_action`) freezes the target (runs.bulk_targets) and returns
at once. Every worker's scheduler pass calls `run_pending_bulk_actions`, which
advances the active bulk actions chunk by chunk within a time budget. The runs of a
bulk action are split into lanes (contiguous ranges of its keyset order: two on
PostgreSQL, worked on by two threads or workers at once, one on SQLite). A chunk is
one transaction that:

- locks one lane (SKIP LOCKED: one thread or worker per lane at a time),
- takes the lane's next targets after its keyset cursor (created_at, id), oldest
  first, leaving out runs that already have an item (a second guard),
- cancels them with one guarded UPDATE (`runs.actions.cancel_runs`: executing runs
  are stopped by their worker, children cascade; runs that finished before the
  action reached them are skipped) or replays them with bulk inserts
  (`runs.triggering.replay_many`),
- writes one BulkActionItem per run (unique per bulk action and run), moves the
  lane's cursor, adds the counts to the bulk action and publishes the progress.

A crash rolls the chunk back whole, so a restarted worker resumes at the committed
cursors and never touches a run twice. Filter criteria other than the time window
(status above all) are evaluated when the action reaches a run, as Trigger.dev
does: a run that left the filtered status by then is not touched, and the bulk
action page reports how many targeted runs no longer matched.
"""

from __future__ import annotations

import itertools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from realtime.publish import object_changed
from runs.actions import cancel_runs
from runs.bulk_targets import (
    MAX_RUN_IDS,
    BulkTarget,
    describe_filter,
    target_from_bulk_action,
    target_from_filter,
    target_from_run_ids,
)
from runs.errors import InvalidInput, RunError, Unprocessable
from runs.models import (
    ACTIVE_BULK_STATUSES,
    BulkAction,
    BulkActionItem,
    BulkActionLane,
    BulkActionOutcome,
    BulkActionStatus,
    BulkActionType,
    Run,
)
from runs.setsql import list_param, rows_of, rows_param, values_of
from runs.statuses import CANCELABLE
from runs.triggering import replay_many

__all__ = [
    "MAX_RUN_IDS",
    "BulkTarget",
    "abort_bulk_action",
    "count_targets",
    "create_bulk_action",
    "describe_filter",
    "preview",
    "process_next_chunk",
    "run_pending_bulk_actions",
    "target_from_bulk_action",
    "target_from_filter",
    "target_from_run_ids",
]

logger = logging.getLogger("runwatch.bulk")

MAX_TARGETS = 1_000_000  # per bulk action
MAX_NAME_LENGTH = 255
MAX_ACTIVE = 10  # pending or running bulk actions per environment
PREVIEW_SIZE = 10
CANCEL_CHUNK = 5000  # runs per transaction: one UPDATE, one INSERT of events
REPLAY_CHUNK = 500  # runs per transaction: payloads are loaded, so fewer
# Seconds of bulk work per scheduler pass (the worker's pass comes every 0.5 s): fast
# bulk actions, and the worker still claims, dispatches and records between passes.
PASS_BUDGET = 0.4
# Lanes per bulk action on PostgreSQL, processed by as many threads: the work is mostly
# the database's (index upkeep of cancels), which then uses two cores instead of one.
LANES = 2
LANE_MIN_RUNS = 1000  # smaller bulk actions are one lane: a chunk or two anyway

# --- preview and submit --------------------------------------------------------------


class TooManyActive(RunError):
    status_code = 429


@dataclass
class Preview:
    """A dry run: what a bulk action would target now. Nothing is changed."""

    target: BulkTarget
    action: str
    targeted: int  # capped at MAX_TARGETS + 1
    eligible: int  # cancel: not finished yet; replay: all of them
    runs: list[Run]  # the first runs it would touch, in processing order

    @property
    def too_many(self) -> bool:
        return self.targeted > MAX_TARGETS

    @property
    def summary(self) -> str:
        return self.target.describe()


def count_targets(target: BulkTarget) -> int:
    """How many runs `target` matches now (at most MAX_TARGETS + 1)."""
    return target.queryset().count_capped(MAX_TARGETS + 1)


def preview(target: BulkTarget, action: str) -> Preview:
    action = _check_action(action)
    qs = target.queryset()
    targeted = qs.count_capped(MAX_TARGETS + 1)
    if action == BulkActionType.CANCEL:
        eligible = qs.filter(status__in=CANCELABLE).count_capped(MAX_TARGETS + 1)
    else:
        eligible = targeted
    runs = list(
        qs.with_row_columns().order_by("created_at", "id")[:PREVIEW_SIZE]
        if targeted
        else []
    )
    return Preview(target, action, targeted, eligible, runs)


def _check_action(action: str) -> str:
    value = (action or "").upper()
    if value not in BulkActionType.values:
        raise InvalidInput('action must be "cancel" or "replay"', field="action")
    return value


def create_bulk_action(
    target: BulkTarget,
    action: str,
    *,
    name: str = "",
    use_current_version: bool = True,
    user=None,
    via: str = "dashboard",
) -> BulkAction:
    """Record a bulk action (PENDING) over a frozen target and return at once; the
    scheduler does the work. Refuses empty targets and more than MAX_TARGETS runs."""
    action = _check_action(action)
    name = (name or "").strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"The name can be at most {MAX_NAME_LENGTH} characters", field="name"
        )
    targeted = count_targets(target)
    if targeted > MAX_TARGETS:
        raise Unprocessable(
            f"This bulk action would target more than {MAX_TARGETS:,} runs, the most "
            "one bulk action may touch. Narrow the filter (e.g. a shorter time range).",
            field="filter",
        )
    if targeted == 0:
        raise Unprocessable("No runs match, so there is nothing to do", field="filter")
    active = BulkAction.objects.filter(
        environment=target.environment, status__in=ACTIVE_BULK_STATUSES
    ).count()
    if active >= MAX_ACTIVE:
        raise TooManyActive(
            f"You can only run {MAX_ACTIVE} bulk actions at a time in this "
            "environment. Wait for one to finish, or abort one."
        )
    with transaction.atomic():
        bulk = BulkAction.objects.create(
            environment=target.environment,
            name=name,
            type=action,
            params=target.params,
            summary=target.describe(),
            use_current_version=bool(use_current_version),
            created_by=user if user is not None and user.is_authenticated else None,
            created_via=via,
            targeted=targeted,
        )
        BulkActionLane.objects.bulk_create(_lanes(bulk, target, targeted))
        object_changed("bulk", bulk.pk, bulk.environment_id)
    logger.info(
        "bulk action %s: %s %d runs (%s) by %s via %s",
        bulk.friendly_id,
        action.lower(),
        targeted,
        bulk.summary,
        bulk.created_by or "api key",
        via,
    )
    return bulk


def abort_bulk_action(bulk: BulkAction, *, user=None, via: str = "dashboard") -> bool:
    """Stop a bulk action that is still pending or running: a chunk in flight either
    committed before this or is rolled back. False when it had already completed or
    been aborted."""
    now = timezone.now()
    with transaction.atomic():
        stopped = BulkAction.objects.filter(
            pk=bulk.pk, status__in=ACTIVE_BULK_STATUSES
        ).update(
            status=BulkActionStatus.ABORTED,
            completed_at=now,
            aborted_by=user if user is not None and user.is_authenticated else None,
            aborted_via=via,
        )
        if stopped:
            object_changed("bulk", bulk.pk, bulk.environment_id)
    bulk.refresh_from_db()
    if stopped:
        logger.info(
            "bulk action %s aborted by %s via %s",
            bulk.friendly_id,
            bulk.aborted_by or "api key",
            via,
        )
    return bool(stopped)


# --- processing ---------------------------------------------------------------------


@dataclass
class ChunkResult:
    processed: int
    finished: bool  # no lane of this bulk action is left for the caller to work on


class _Stopped(Exception):
    """The bulk action was aborted while a chunk was in flight: roll the chunk back."""


@dataclass
class _Counts:
    succeeded: int = 0
    skipped: int = 0
    failed: int = 0

    @property
    def processed(self) -> int:
        return self.succeeded + self.skipped + self.failed


def lane_count() -> int:
    """Lanes for a new bulk action: parallel lanes need row locks (PostgreSQL)."""
    return LANES if connection.vendor == "postgresql" else 1


def _lanes(bulk: BulkAction, target: BulkTarget, targeted: int) -> list[BulkActionLane]:
    """Split the targets into contiguous ranges of their keyset order, one per lane,
    at the runs that divide them evenly now: lanes that touch different parts of the
    table and its indexes get in each other's way far less than interleaved ones.
    (One bounded index walk per boundary, at submit.)"""
    count = lane_count() if targeted >= LANE_MIN_RUNS else 1
    ordered = (
        target.queryset().order_by("created_at", "id").values_list("created_at", "id")
    )
    bounds: list[tuple | None] = [None]
    for n in range(1, count):
        at = n * targeted // count
        row = list(ordered[at - 1 : at])
        if row:  # (runs deleted since they were counted mean fewer lanes)
            bounds.append(row[0])
    bounds.append(None)
    return [
        BulkActionLane(
            bulk_action=bulk,
            number=n,
            after_created=start[0] if start else None,
            after_id=start[1] if start else None,
            until_created=end[0] if end else None,
            until_id=end[1] if end else None,
        )
        for n, (start, end) in enumerate(itertools.pairwise(bounds))
    ]


def run_pending_bulk_actions(budget: float | None = None) -> int:
    """Advance the active bulk actions, oldest first and in turns, chunk by chunk until
    `budget` seconds have passed; returns how many runs were processed. On PostgreSQL
    the lanes of a bulk action are worked on by LANES threads at once (outside a
    transaction only: threads cannot see uncommitted rows)."""
    deadline = time.monotonic() + (PASS_BUDGET if budget is None else budget)
    active = list(
        BulkAction.objects.filter(status__in=ACTIVE_BULK_STATUSES)
        .order_by("created_at", "id")
        .values_list("pk", flat=True)[:20]
    )
    now = time.monotonic()
    active = [pk for pk in active if _failing.get(pk, 0) <= now]
    if not active:
        return 0
    if lane_count() == 1 or connection.in_atomic_block:
        return _work(active, deadline, prefer=0)
    # Threads of this pass only (no thread outlives it), each with its own connection.
    with ThreadPoolExecutor(LANES - 1, thread_name_prefix="bulk-lane") as pool:
        helpers = [
            pool.submit(_work_in_thread, active, deadline, lane)
            for lane in range(1, LANES)
        ]
        processed = _work(active, deadline, prefer=0)
        return processed + sum(helper.result() for helper in helpers)


def _work_in_thread(active: list[int], deadline: float, prefer: int) -> int:
    try:
        return _work(active, deadline, prefer=prefer)
    finally:
        connection.close()  # this thread's own connection; a new one next pass


def _work(active: list[int], deadline: float, *, prefer: int) -> int:
    processed = 0
    pending = list(active)
    while pending and time.monotonic() < deadline:
        for pk in list(pending):
            try:
                result = process_next_chunk(pk, prefer=prefer)
            except Exception as exc:  # one broken bulk action must not stop the others
                logger.exception("bulk action %s: chunk failed", pk)
                _record_error(pk, exc)
                result = ChunkResult(0, True)
            processed += result.processed
            if result.finished:
                pending.remove(pk)
            if time.monotonic() >= deadline:
                break
    return processed


# Bulk actions whose last chunk failed wait this long before the next try (per
# process), so a persistent error is logged every few seconds, not every pass.
RETRY_AFTER = 10.0
_failing: dict[int, float] = {}


def _record_error(pk: int, exc: Exception) -> None:
    _failing[pk] = time.monotonic() + RETRY_AFTER
    try:
        BulkAction.objects.filter(pk=pk).update(
            last_error=f"{type(exc).__name__}: {exc}"[:2000]
        )
    except Exception:
        logger.exception("bulk action %s: could not record the error", pk)


def process_next_chunk(pk: int, *, prefer: int = 0) -> ChunkResult:
    """Process the next chunk of one lane of bulk action `pk` (lane `prefer` if it is
    free) in one transaction; see the module docstring. Nothing happens when every
    unfinished lane is held by another thread or worker, or the action is over."""
    try:
        with transaction.atomic():
            return _chunk(pk, prefer, timezone.now())
    except _Stopped:
        return ChunkResult(0, True)


def _chunk(pk: int, prefer: int, now: datetime) -> ChunkResult:
    lane = (
        BulkActionLane.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("bulk_action__environment")
        .filter(
            bulk_action_id=pk, done=False, bulk_action__status__in=ACTIVE_BULK_STATUSES
        )
        .order_by(Case(When(number=prefer, then=0), default=1), "number")
        .first()
    )
    if lane is None:
        return ChunkResult(0, True)
    bulk = lane.bulk_action
    cancel = bulk.type == BulkActionType.CANCEL
    size = CANCEL_CHUNK if cancel else REPLAY_CHUNK
    candidates = _next_candidates(bulk, lane, size)
    run_ids = _untouched(bulk, [run_id for run_id, _ in candidates])
    counts = _Counts()
    if run_ids:
        counts = _cancel(bulk, run_ids, now) if cancel else _replay(bulk, run_ids, now)
    if candidates:
        lane.after_id, lane.after_created = candidates[-1]
    lane.done = len(candidates) < size
    lane.save(update_fields=["after_id", "after_created", "done"])
    _record_progress(bulk, lane, counts, now)
    object_changed("bulk", bulk.pk, bulk.environment_id)
    return ChunkResult(len(run_ids), False)


def _next_candidates(
    bulk: BulkAction, lane: BulkActionLane, size: int
) -> list[tuple[int, datetime]]:
    """The lane's next `size` targets after its cursor (and up to its end), oldest
    first."""
    qs = BulkTarget(bulk.environment, bulk.params).queryset()
    # The plain range on created_at besides each keyset condition makes it an index
    # bound: without it the scan starts at the lane's start every chunk and walks
    # every run processed before (and their dead row versions), quadratic in the
    # lane's size.
    if lane.until_id is not None:
        qs = qs.filter(
            Q(created_at__lt=lane.until_created)
            | Q(created_at=lane.until_created, pk__lte=lane.until_id),
            created_at__lte=lane.until_created,
        )
    if lane.after_id is not None:
        qs = qs.filter(
            Q(created_at__gt=lane.after_created)
            | Q(created_at=lane.after_created, pk__gt=lane.after_id),
            created_at__gte=lane.after_created,
        )
    return list(qs.order_by("created_at", "id").values_list("pk", "created_at")[:size])


def _untouched(bulk: BulkAction, run_ids: list[int]) -> list[int]:
    """`run_ids` less the runs this bulk action already has an item for (a second
    guard besides the cursor). A separate probe of the items' unique index, not an
    anti-join in the targets' query: with the items' statistics taken while the bulk
    action had none, the planner rescanned all of its items for every target, so
    each chunk took longer than the one before."""
    if not run_ids:
        return []
    with connection.cursor() as cursor:
        # One index probe per id, whatever the statistics say (LIMIT keeps the
        # LATERAL subquery from being flattened into a join): `run_id = ANY(…)`
        # became a filter searching the whole id list for each item of the bulk
        # action, and a hash join reads all of its items: both grew every chunk.
        if connection.vendor == "postgresql":
            probe = (
                "CROSS JOIN LATERAL (SELECT 1 FROM runs_bulkactionitem i "
                "WHERE i.bulk_action_id = %s AND i.run_id = value LIMIT 1) AS found"
            )
        else:
            probe = (
                "WHERE EXISTS (SELECT 1 FROM runs_bulkactionitem i "
                "WHERE i.bulk_action_id = %s AND i.run_id = value)"
            )
        cursor.execute(
            f"SELECT value FROM {values_of('bigint')} {probe}",
            [list_param(run_ids), bulk.pk],
        )
        done = {run_id for (run_id,) in cursor.fetchall()}
    return [pk for pk in run_ids if pk not in done] if done else run_ids


def _record_progress(
    bulk: BulkAction, lane: BulkActionLane, counts: _Counts, now: datetime
) -> None:
    """Add the chunk's counts to the bulk action (COMPLETED once its last lane is done).
    The bulk action row is locked from here to the commit, so the lanes' foreign keys
    are checked first: other lanes wait for an instant, not for the checks."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    updated = BulkAction.objects.filter(
        pk=bulk.pk, status__in=ACTIVE_BULK_STATUSES
    ).update(
        status=BulkActionStatus.RUNNING,
        started_at=Coalesce("started_at", Value(now)),
        processed=F("processed") + counts.processed,
        succeeded=F("succeeded") + counts.succeeded,
        skipped=F("skipped") + counts.skipped,
        failed=F("failed") + counts.failed,
        last_error="",
    )
    if not updated:
        raise _Stopped  # aborted meanwhile: this chunk must not happen
    # Under the row lock, so the last lane to finish sees every other lane done.
    if lane.done and not bulk.lanes.filter(done=False).exists():
        BulkAction.objects.filter(pk=bulk.pk).update(
            status=BulkActionStatus.COMPLETED, completed_at=now
        )


def _cancel(bulk: BulkAction, run_ids: list[int], now: datetime) -> _Counts:
    canceled = set(
        cancel_runs(run_ids, reason=f"Canceled by bulk action {bulk.friendly_id}")
    )
    # Children canceled by the cascade are not targets: count and record targets only.
    succeeded = [pk for pk in run_ids if pk in canceled]
    skipped = [pk for pk in run_ids if pk not in canceled]
    for outcome, ids in (
        (BulkActionOutcome.SUCCEEDED, succeeded),
        (BulkActionOutcome.SKIPPED, skipped),
    ):
        if ids:
            _insert_items(bulk, outcome, ids, now)
    return _Counts(succeeded=len(succeeded), skipped=len(skipped))


def _insert_items(bulk: BulkAction, outcome: str, run_ids: list[int], now) -> None:
    """One INSERT of items with the same outcome, straight from the id list."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {BulkActionItem._meta.db_table} "
            "(bulk_action_id, run_id, outcome, message, created_at, processed_at) "
            f"SELECT %s, value, %s, '', %s, %s FROM {values_of('bigint')}",
            [bulk.pk, outcome, now, now, list_param(run_ids)],
        )


REPLAY_COLUMNS = (
    "id",
    "environment_id",
    "task_identifier",
    "payload",
    "payload_type",
    "seed_metadata",
    "tags",
    "queue",
    "concurrency_key",
    "machine",
    "is_test",
    "version",
)


def _replay(bulk: BulkAction, run_ids: list[int], now: datetime) -> _Counts:
    runs = list(Run.objects.filter(pk__in=run_ids).only(*REPLAY_COLUMNS))
    outcome = replay_many(
        bulk.environment, runs, use_current_version=bulk.use_current_version
    )
    rows = []
    for run in runs:
        result = outcome[run.pk]
        if isinstance(result, RunError):
            rows.append((run.pk, None, BulkActionOutcome.FAILED, result.message[:255]))
        else:
            rows.append((run.pk, result.pk, BulkActionOutcome.SUCCEEDED, ""))
    columns = [
        ("run_id", "bigint"),
        ("new_run_id", "bigint"),
        ("outcome", "text"),
        ("message", "text"),
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {BulkActionItem._meta.db_table} (bulk_action_id, run_id, "
            "new_run_id, outcome, message, created_at, processed_at) "
            f"SELECT %s, run_id, new_run_id, outcome, message, %s, %s FROM {rows_of(columns)}",
            [bulk.pk, now, now, *rows_param(rows, len(columns))],
        )
    failures = sum(1 for row in rows if row[2] == BulkActionOutcome.FAILED)
    return _Counts(succeeded=len(rows) - failures, failed=failures)
