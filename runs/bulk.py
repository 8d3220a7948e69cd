"""Bulk actions: cancel or replay many runs, chosen by a filter or by hand.

Submitting (`create_bulk_action`) freezes the target and returns at once: a filter's
relative period becomes an absolute from/to ending now, so runs created later are
never included; a selection is a fixed list of runs. Every worker's scheduler pass
calls `run_pending_bulk_actions`, which advances the active bulk actions chunk by
chunk within a time budget. A chunk is one transaction that:

- locks the bulk action row (SKIP LOCKED: one worker per bulk action at a time),
- takes the next targets after the keyset cursor (created_at, id), oldest first,
  leaving out runs that already have an item (a second guard besides the cursor),
- cancels them with one guarded UPDATE (`runs.actions.cancel_runs`: executing runs
  are stopped by their worker, children cascade; runs that finished before the
  action reached them are skipped) or replays them with bulk inserts
  (`runs.triggering.replay_many`),
- writes one BulkActionItem per run (unique per bulk action and run), the counts
  and the new cursor, and publishes the progress for the live feed.

A crash rolls the chunk back whole, so a restarted worker resumes at the committed
cursor and never touches a run twice. Filter criteria other than the time window
(status above all) are evaluated when the action reaches a run, as Trigger.dev
does: a run that left the filtered status by then is not touched, and the bulk
action page reports how many targeted runs no longer matched.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from realtime.publish import object_changed
from runs.actions import cancel_runs
from runs.errors import InvalidInput, RunError, Unprocessable
from runs.filters import RunFilter
from runs.models import (
    ACTIVE_BULK_STATUSES,
    BulkAction,
    BulkActionItem,
    BulkActionOutcome,
    BulkActionStatus,
    BulkActionType,
    Environment,
    Run,
)
from runs.setsql import list_param, values_of
from runs.statuses import CANCELABLE, GROUPS, RunStatus
from runs.triggering import replay_many

logger = logging.getLogger("runwatch.bulk")

MAX_TARGETS = 1_000_000  # per bulk action
MAX_RUN_IDS = 500  # per hand selection (Trigger.dev: 500 over the API, 250 by hand)
MAX_NAME_LENGTH = 255
PREVIEW_SIZE = 10
CANCEL_CHUNK = 5000  # runs per transaction: one UPDATE, one INSERT of events
REPLAY_CHUNK = 500  # runs per transaction: payloads are loaded, so fewer
# Seconds of bulk work per scheduler pass (the worker's pass comes every 0.5 s): fast
# bulk actions, and the worker still claims, dispatches and records between passes.
PASS_BUDGET = 0.4

# RunFilter fields that make the time window, frozen into absolute from/to.
WINDOW_FIELDS = frozenset({"period", "from_", "to"})


# --- targets ---------------------------------------------------------------------


@dataclass(frozen=True)
class BulkTarget:
    """The runs a bulk action acts on, as stored in BulkAction.params:
    `{"filter": {...}}` (RunFilter data with an absolute time window),
    `{"runIds": [...]}` (a hand selection of run ids) or `{"bulkAction": "bulk_…"}`
    (the runs an earlier bulk action canceled or replayed: "replay these runs again")."""

    environment: Environment
    params: dict

    @property
    def is_selection(self) -> bool:
        return "runIds" in self.params

    def queryset(self) -> QuerySet[Run]:
        runs = Run.objects.filter(environment=self.environment)
        if self.is_selection:
            return runs.filter(friendly_id__in=self.params["runIds"])
        if "bulkAction" in self.params:
            acted_on = BulkActionItem.objects.filter(
                bulk_action__environment=self.environment,
                bulk_action__friendly_id=self.params["bulkAction"],
            ).exclude(outcome=BulkActionOutcome.SKIPPED)
            return runs.filter(pk__in=acted_on.values("run_id"))
        return RunFilter(self.params["filter"], queryset=runs).qs

    def describe(self) -> str:
        if self.is_selection:
            count = len(self.params["runIds"])
            return f"{count} selected run{'' if count == 1 else 's'}"
        if "bulkAction" in self.params:
            return (
                f"The runs bulk action {self.params['bulkAction']} canceled or replayed"
            )
        return describe_filter(self.params["filter"])


def target_from_filter(
    environment: Environment, data, *, now: datetime | None = None
) -> BulkTarget:
    """Validate RunFilter data (the runs list's query string) and freeze it: the time
    window becomes absolute and ends no later than now."""
    now = now or timezone.now()
    run_filter = RunFilter(data, queryset=Run.objects.none())
    if not run_filter.is_valid():
        raise InvalidInput("; ".join(run_filter.error_messages()), field="filter")
    cleaned = run_filter.form.cleaned_data
    start, end = run_filter.created_bounds()
    end = min(end, now) if end else now
    if start is not None and start > end:
        raise InvalidInput("The filter's time range is empty", field="filter")
    frozen: dict[str, str | list[str]] = {}
    for name in RunFilter.base_filters:
        value = cleaned.get(name)
        if name in WINDOW_FIELDS or value is None or value in ("", []):
            continue
        if isinstance(value, bool):
            frozen[name] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            frozen[name] = sorted(set(value))
        else:
            frozen[name] = str(value).strip()
    if start is not None:
        frozen["from"] = _iso(start)
    frozen["to"] = _iso(end)
    return BulkTarget(environment, {"filter": frozen})


def target_from_run_ids(environment: Environment, run_ids: list) -> BulkTarget:
    """A hand selection of runs of `environment`; every id must exist there."""
    if not isinstance(run_ids, list) or not all(isinstance(r, str) for r in run_ids):
        raise InvalidInput("runIds must be a list of run ids", field="runIds")
    ids = list(dict.fromkeys(r.strip() for r in run_ids if r.strip()))
    if not ids:
        raise InvalidInput("Select at least one run", field="runIds")
    if len(ids) > MAX_RUN_IDS:
        raise InvalidInput(
            f"A selection can hold at most {MAX_RUN_IDS} runs ({len(ids)} given); "
            "to act on more, use a filter",
            field="runIds",
        )
    found = set(
        Run.objects.filter(environment=environment, friendly_id__in=ids).values_list(
            "friendly_id", flat=True
        )
    )
    missing = [r for r in ids if r not in found]
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise InvalidInput(
            f"{len(missing)} of the selected runs were not found in this environment: {shown}",
            field="runIds",
        )
    return BulkTarget(environment, {"runIds": ids})


def target_from_bulk_action(bulk: BulkAction) -> BulkTarget:
    """The runs `bulk` canceled or replayed (not the ones it skipped), to act on again."""
    return BulkTarget(bulk.environment, {"bulkAction": bulk.friendly_id})


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


# --- the filter in words ---------------------------------------------------------------


def describe_filter(data: dict) -> str:
    """A frozen filter in words, e.g. "Status is Failed · Task is send-email ·
    Created 2026-11-25 09:00:00 → 2026-11-25 12:45:10 UTC"."""
    parts: list[str] = []
    if data.get("status"):
        parts.append("Status is " + " or ".join(_status_words(data["status"])))
    for name, label in (
        ("task", "Task"),
        ("version", "Version"),
        ("queue", "Queue"),
        ("machine", "Machine"),
    ):
        if data.get(name):
            parts.append(f"{label} is {' or '.join(data[name])}")
    if data.get("tag"):
        parts.append("Tagged " + " or ".join(data["tag"]))
    for name, label in (
        ("batch", "In batch"),
        ("bulk_action", "Touched by bulk action"),
        ("schedule", "From schedule"),
        ("search", "Run ID or idempotency key is"),
    ):
        if data.get(name):
            parts.append(f"{label} {data[name]}")
    described = {"status", "task", "version", "queue", "machine", "tag", "batch"}
    described |= {"bulk_action", "schedule", "search", "root_only", "is_test"}
    for name, value in data.items():
        if (
            name in described
            or name in ("from", "to")
            or name not in RunFilter.base_filters
        ):
            continue
        label = RunFilter.base_filters[name].label or name
        shown = " or ".join(value) if isinstance(value, list) else value
        parts.append(f"{label} is {shown}")
    if data.get("root_only") == "true":
        parts.append("Root runs only")
    if data.get("is_test") in ("true", "false"):
        parts.append("Test runs only" if data["is_test"] == "true" else "No test runs")
    parts.append(_window_words(data.get("from"), data.get("to")))
    return " · ".join(parts)


def _status_words(names: list[str]) -> list[str]:
    # The same precedence as statuses.parse_status_names: a status, then a group.
    words = []
    for name in names:
        if name.upper() in RunStatus.values:
            words.append(RunStatus(name.upper()).label)
        elif name.lower() in GROUPS:
            words.append(f"any {name.lower()} status")
        else:
            words.append(name)
    return words


def _window_words(start: str | None, end: str | None) -> str:
    def fmt(value: str) -> str:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")

    if start and end:
        return f"Created {fmt(start)} → {fmt(end)} UTC"
    if end:
        return f"Created up to {fmt(end)} UTC"
    return "Any creation time"


# --- preview and submit --------------------------------------------------------------


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


def _bounded_count(qs: QuerySet) -> int:
    """COUNT(*) that stops after MAX_TARGETS + 1 rows: bounded work at any table size."""
    return qs.order_by()[: MAX_TARGETS + 1].count()


def preview(target: BulkTarget, action: str) -> Preview:
    action = _check_action(action)
    qs = target.queryset()
    targeted = _bounded_count(qs)
    if action == BulkActionType.CANCEL:
        eligible = _bounded_count(qs.filter(status__in=CANCELABLE))
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
    targeted = _bounded_count(target.queryset())
    if targeted > MAX_TARGETS:
        raise Unprocessable(
            f"This bulk action would target more than {MAX_TARGETS:,} runs, the most "
            "one bulk action may touch. Narrow the filter (e.g. a shorter time range).",
            field="filter",
        )
    if targeted == 0:
        raise Unprocessable("No runs match, so there is nothing to do", field="filter")
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
    """Stop a bulk action that is still pending or running; the chunk in progress (if
    any) finishes first. False when it had already completed or been aborted."""
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
    finished: bool  # the bulk action has no work left (completed, aborted or gone)


def run_pending_bulk_actions(budget: float = PASS_BUDGET) -> int:
    """Advance the active bulk actions, oldest first and in turns, chunk by chunk until
    `budget` seconds have passed. Returns how many runs were processed. A failing bulk
    action is logged, its error recorded, and retried on the next pass."""
    deadline = time.monotonic() + budget
    active = list(
        BulkAction.objects.filter(status__in=ACTIVE_BULK_STATUSES)
        .order_by("created_at", "id")
        .values_list("pk", flat=True)[:20]
    )
    processed = 0
    while active and time.monotonic() < deadline:
        for pk in list(active):
            try:
                result = process_next_chunk(pk)
            except Exception as exc:  # one broken bulk action must not stop the others
                logger.exception("bulk action %s: chunk failed", pk)
                _record_error(pk, exc)
                result = ChunkResult(0, True)
            processed += result.processed
            if result.finished:
                active.remove(pk)
            if time.monotonic() >= deadline:
                break
    return processed


def _record_error(pk: int, exc: Exception) -> None:
    try:
        BulkAction.objects.filter(pk=pk).update(
            last_error=f"{type(exc).__name__}: {exc}"[:2000]
        )
    except Exception:
        logger.exception("bulk action %s: could not record the error", pk)


def process_next_chunk(pk: int) -> ChunkResult:
    """Process the next chunk of bulk action `pk` in one transaction (see the module
    docstring). Nothing happens when another worker holds it or it is not active."""
    now = timezone.now()
    with transaction.atomic():
        bulk = (
            BulkAction.objects.select_for_update(skip_locked=True)
            .select_related("environment")
            .filter(pk=pk, status__in=ACTIVE_BULK_STATUSES)
            .first()
        )
        if bulk is None:
            return ChunkResult(0, True)
        if bulk.status == BulkActionStatus.PENDING:
            bulk.status, bulk.started_at = BulkActionStatus.RUNNING, now
        size = CANCEL_CHUNK if bulk.type == BulkActionType.CANCEL else REPLAY_CHUNK
        targets = _next_targets(bulk, size)
        if targets:
            if bulk.type == BulkActionType.CANCEL:
                _cancel(bulk, [pk for pk, _ in targets], now)
            else:
                _replay(bulk, [pk for pk, _ in targets], now)
            last_created, last_pk = targets[-1][1], targets[-1][0]
            bulk.cursor = {"after": [_iso(last_created), last_pk]}
            bulk.processed += len(targets)
        finished = len(targets) < size
        if finished:
            bulk.status, bulk.completed_at = BulkActionStatus.COMPLETED, now
        bulk.last_error = ""
        bulk.save()
        object_changed("bulk", bulk.pk, bulk.environment_id)
    return ChunkResult(len(targets), finished)


def _next_targets(bulk: BulkAction, size: int) -> list[tuple[int, datetime]]:
    """The next `size` targets after the cursor, oldest first, that this bulk action
    has not touched yet."""
    qs = BulkTarget(bulk.environment, bulk.params).queryset()
    if bulk.cursor:
        created_iso, last_pk = bulk.cursor["after"]
        created = datetime.fromisoformat(created_iso)
        qs = qs.filter(
            Q(created_at__gt=created) | Q(created_at=created, pk__gt=last_pk)
        )
    qs = qs.exclude(
        Exists(BulkActionItem.objects.filter(bulk_action=bulk, run_id=OuterRef("pk")))
    )
    return list(qs.order_by("created_at", "id").values_list("pk", "created_at")[:size])


def _cancel(bulk: BulkAction, run_ids: list[int], now: datetime) -> None:
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
    bulk.succeeded += len(succeeded)
    bulk.skipped += len(skipped)


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


def _replay(bulk: BulkAction, run_ids: list[int], now: datetime) -> None:
    runs = list(Run.objects.filter(pk__in=run_ids).only(*REPLAY_COLUMNS))
    outcome = replay_many(
        bulk.environment, runs, use_current_version=bulk.use_current_version
    )
    items = []
    for run in runs:
        result = outcome[run.pk]
        failed = isinstance(result, RunError)
        items.append(
            BulkActionItem(
                bulk_action=bulk,
                run_id=run.pk,
                new_run=None if failed else result,
                outcome=BulkActionOutcome.FAILED
                if failed
                else BulkActionOutcome.SUCCEEDED,
                message=result.message[:255] if failed else "",
                created_at=now,
                processed_at=now,
            )
        )
    BulkActionItem.objects.bulk_create(items)
    failures = sum(1 for item in items if item.outcome == BulkActionOutcome.FAILED)
    bulk.failed += failures
    bulk.succeeded += len(items) - failures
