"""RunFilter as a predicate: does one run match a filter, without a query?

The live feed keeps one matcher per distinct filter that an open runs list uses and
tests every changed run against it in memory. It must agree with `RunFilter(...).qs`
exactly (tests/runs/test_filter_match.py checks it on a varied sample of runs).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from runs.durations import parse_duration_seconds
from runs.filters import DEFAULT_PERIOD, RunFilter, status_set
from runs.models import BulkActionItem, Run
from runs.querysets import ROW_COLUMNS

# What `matches` reads besides the row columns.
MATCH_COLUMNS = (*ROW_COLUMNS, "idempotency_key", "parent_id", "parent__friendly_id")


def _set(values) -> frozenset[str] | None:
    return frozenset(values) if values else None


@dataclass(frozen=True)
class RunMatcher:
    """The cleaned data of a valid RunFilter, as a predicate over loaded runs."""

    statuses: frozenset[str] | None = None
    tasks: frozenset[str] | None = None
    tags: frozenset[str] | None = None
    versions: frozenset[str] | None = None
    queues: frozenset[str] | None = None
    machines: frozenset[str] | None = None
    batch: str | None = None
    parent: str | None = None
    bulk_action: str | None = None
    schedule: str | None = None
    search: str | None = None
    root_only: bool = False
    is_test: bool | None = None
    period_seconds: int | None = None  # relative window, re-evaluated at each match
    created_from: datetime | None = None
    created_to: datetime | None = None

    @classmethod
    def from_filter(cls, run_filter: RunFilter) -> RunMatcher:
        """Build from a bound RunFilter whose `is_valid()` returned True."""
        data = run_filter.form.cleaned_data
        start, end = data.get("from_"), data.get("to")
        period = data.get("period") or ""
        period_seconds = None
        if start is None and end is None and period != "all":
            period_seconds = parse_duration_seconds(period or DEFAULT_PERIOD)
        return cls(
            statuses=_set(status_set(data["status"])) if data.get("status") else None,
            tasks=_set(data.get("task")),
            tags=_set(data.get("tag")),
            versions=_set(data.get("version")),
            queues=_set(data.get("queue")),
            machines=_set(data.get("machine")),
            batch=(data.get("batch") or "").strip() or None,
            parent=(data.get("parent") or "").strip() or None,
            bulk_action=data.get("bulk_action") or None,
            schedule=data.get("schedule") or None,
            search=(data.get("search") or "").strip() or None,
            root_only=bool(data.get("root_only")),
            is_test=data.get("is_test"),
            period_seconds=period_seconds,
            created_from=start,
            created_to=end,
        )

    def matches(
        self,
        run: Run,
        bulk_actions: Collection[str] = (),
        now: datetime | None = None,
    ) -> bool:
        """`run` must carry MATCH_COLUMNS (batch joined); `bulk_actions` are the friendly
        ids of the bulk actions that touched or created it (only read when the filter
        has one)."""
        if self.schedule:
            return False  # no run comes from a schedule (see RunFilter.filter_schedule)
        if self.statuses is not None and run.status not in self.statuses:
            return False
        if not self._matches_columns(run):
            return False
        if self.bulk_action and self.bulk_action not in bulk_actions:
            return False
        return self._matches_created(run.created_at, now)

    def _matches_columns(self, run: Run) -> bool:
        checks = (
            (self.tasks, run.task_identifier),
            (self.versions, run.version),
            (self.queues, run.queue),
            (self.machines, run.machine),
        )
        if any(
            allowed is not None and value not in allowed for allowed, value in checks
        ):
            return False
        if self.tags is not None and self.tags.isdisjoint(run.tags or ()):
            return False
        if self.batch and (run.batch_id is None or run.batch.friendly_id != self.batch):
            return False
        if self.parent and (
            run.parent_id is None or run.parent.friendly_id != self.parent
        ):
            return False
        if self.search and not self._matches_search(run):
            return False
        if self.root_only and run.depth != 0:
            return False
        return self.is_test is None or run.is_test == self.is_test

    def _matches_search(self, run: Run) -> bool:
        if self.search.startswith("run_"):
            return run.friendly_id == self.search
        return self.search in (run.idempotency_key_user, run.idempotency_key)

    def _matches_created(self, created: datetime, now: datetime | None) -> bool:
        start, end = self.created_from, self.created_to
        if self.period_seconds is not None:
            start = (now or timezone.now()) - timedelta(seconds=self.period_seconds)
        if start is not None and created < start:
            return False
        return end is None or created <= end


def with_match_columns(runs: QuerySet[Run]) -> QuerySet[Run]:
    """Everything the row partial and `RunMatcher.matches` read, in one query."""
    return runs.with_row_columns().select_related("parent").only(*MATCH_COLUMNS)


def load_runs_for_matching(run_ids: Collection[int]) -> QuerySet[Run]:
    return with_match_columns(Run.objects.filter(pk__in=list(run_ids)))


def bulk_actions_of(run_ids: Collection[int]) -> dict[int, set[str]]:
    """run id → friendly ids of the bulk actions that touched (or replayed into) it."""
    found: dict[int, set[str]] = {}
    rows = BulkActionItem.objects.filter(
        Q(run_id__in=list(run_ids)) | Q(new_run_id__in=list(run_ids))
    ).values_list("run_id", "new_run_id", "bulk_action__friendly_id")
    wanted = set(run_ids)
    for run_id, new_run_id, bulk_id in rows:
        for pk in (run_id, new_run_id):
            if pk in wanted:
                found.setdefault(pk, set()).add(bulk_id)
    return found
