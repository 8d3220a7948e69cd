"""Reading the committed change feed: RunEvent rows (every run change) and LiveSignal
rows (batches, bulk actions, deployments, environments), after the last ids seen.

Ids come from sequences, and on PostgreSQL a transaction that took a smaller id can
commit after one that took a larger id. Reading `id > last` alone would then skip the
late row forever, so ids missing below the highest one read are kept as *gaps* and
looked up again on every read until they appear or expire (a rolled-back insert
leaves a gap that never fills).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Max

from realtime.models import LiveSignal
from runs.models import RunEvent, RunEventKind

READ_LIMIT = 5000  # rows per table per read; a larger backlog takes several reads
GAP_SECONDS = 10.0  # how long a missing id is waited for
MAX_GAPS = 10_000
MAX_BACKLOG = 200_000  # beyond this, skip ahead and have every page take a snapshot


@dataclass
class RunChange:
    environment_id: int
    kinds: set[str] = field(default_factory=set)
    status: str = ""  # the last status event's status in this read, if any
    first_event_id: int = 0
    last_event_id: int = 0

    @property
    def only_logs(self) -> bool:
        return self.kinds == {RunEventKind.LOG}


@dataclass
class FeedBatch:
    runs: dict[int, RunChange] = field(default_factory=dict)
    signals: set[tuple[str, int, int]] = field(default_factory=set)  # kind, id, env
    skipped_ahead: bool = False  # the backlog was too large: changes were dropped
    more: bool = False  # a read limit was hit: read again at once

    def __bool__(self) -> bool:
        return bool(self.runs or self.signals or self.skipped_ahead)


class _TableCursor:
    def __init__(self, model) -> None:
        self.model = model
        self.last_id = 0
        self.gaps: dict[int, float] = {}  # missing id → when to stop waiting for it

    def start(self) -> None:
        self.last_id = self.model.objects.aggregate(m=Max("id"))["m"] or 0
        self.gaps.clear()

    def backlog(self) -> int:
        newest = self.model.objects.aggregate(m=Max("id"))["m"] or 0
        return newest - self.last_id

    def read(self, columns: Iterable[str]) -> tuple[list[tuple], bool]:
        rows = list(
            self.model.objects.filter(id__gt=self.last_id)
            .order_by("id")
            .values_list("id", *columns)[:READ_LIMIT]
        )
        more = len(rows) == READ_LIMIT
        if self.gaps:
            rows += self._fill_gaps(columns)
        self._advance([row[0] for row in rows])
        rows.sort()
        return rows, more

    def _fill_gaps(self, columns: Iterable[str]) -> list[tuple]:
        now = time.monotonic()
        for missing in [pk for pk, until in self.gaps.items() if until < now]:
            del self.gaps[missing]
        found = list(
            self.model.objects.filter(id__in=list(self.gaps)).values_list(
                "id", *columns
            )
        )
        for row in found:
            self.gaps.pop(row[0], None)
        return found

    def _advance(self, ids: list[int]) -> None:
        fresh = sorted(pk for pk in ids if pk > self.last_id)
        if not fresh:
            return
        until = time.monotonic() + GAP_SECONDS
        expected = self.last_id + 1
        for pk in fresh:
            for missing in range(expected, min(pk, expected + MAX_GAPS)):
                self.gaps[missing] = until
            expected = pk + 1
        self.last_id = fresh[-1]
        while len(self.gaps) > MAX_GAPS:
            del self.gaps[next(iter(self.gaps))]


class FeedCursor:
    """Where this process's relay is in the feed. Used from the relay's thread only."""

    def __init__(self) -> None:
        self.events = _TableCursor(RunEvent)
        self.signals = _TableCursor(LiveSignal)
        self.started = False
        self.check_backlog = True  # after a start, a failure or a full read

    @property
    def has_gaps(self) -> bool:
        return bool(self.events.gaps or self.signals.gaps)

    def start(self) -> None:
        """Begin at the current end of the feed (pages take snapshots on connect)."""
        self.events.start()
        self.signals.start()
        self.started = True

    def read(self) -> FeedBatch:
        if not self.started:
            self.start()
            return FeedBatch()
        batch = FeedBatch()
        if self.check_backlog:
            self.check_backlog = False
            if max(self.events.backlog(), self.signals.backlog()) > MAX_BACKLOG:
                self.start()
                batch.skipped_ahead = True
                return batch
        events, more_events = self.events.read(
            ("run_id", "environment_id", "kind", "status")
        )
        for event_id, run_id, env_id, kind, status in events:
            change = batch.runs.get(run_id)
            if change is None:
                change = batch.runs[run_id] = RunChange(env_id, first_event_id=event_id)
            change.kinds.add(kind)
            change.last_event_id = max(change.last_event_id, event_id)
            if kind == RunEventKind.STATUS and status:
                change.status = status
        signals, more_signals = self.signals.read(
            ("kind", "object_id", "environment_id")
        )
        batch.signals = {(kind, oid, env) for _, kind, oid, env in signals}
        batch.more = self.check_backlog = more_events or more_signals
        return batch
