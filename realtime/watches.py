"""What a live page shows, and how a change becomes fragments for it.

A watch is built from the page's URL when the websocket connects. `snapshot()` runs
in the relay's thread (it queries) and returns the page's current state as fragments
plus the watch state that goes with them; `install()` applies that state, in the event
loop, to the watch of the group the connection joins (realtime.groups). The `on_*`
methods run in the event loop with data the relay already loaded and rendered, once
per group, and offer fragments to the group's outbox.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from django.http import QueryDict
from django.utils import timezone

from dashboard.listing import InvalidPageSize, filter_chips, page_size
from dashboard.presenters import render_batch_fragments, render_run_fragments
from realtime.coalesce import Fragment, Outbox
from realtime.fragments import (
    BulkRow,
    RowCache,
    bulk_page_fragments,
    deployments_fragments,
    latest_event_rows,
    load_bulk_action,
    load_run_page,
    new_runs_pill,
    runs_body,
    runs_count,
)
from runs.filter_match import RunMatcher, with_match_columns
from runs.filters import RunFilter
from runs.models import Batch, Environment, Run
from runs.pagination import InvalidCursor, paginate

RowKey = tuple[datetime, int]  # (created_at, id): the runs list's keyset order
MAX_INSERTED_ROWS = 100  # rows a live page grows by before new runs go to the pill
MAX_PILL_RUNS = 999
CURSOR_PARAMS = ("after", "before")


class Watch:
    """Any page of an environment: its header counters are live.

    The hub keeps one watch per group of connections that show the page in the same
    state: a connection's own watch only says which page it wants (`fresh()` copies
    it without state for a new group)."""

    kind = "page"

    def __init__(self, environment: Environment, path: str) -> None:
        self.environment = environment
        self.environment_id = environment.pk
        self.path = path

    def fresh(self) -> Watch:
        """The same page for a new group, before `install()` gives it its state (a
        connection's own watch never holds state: each group has its copy)."""
        return copy.copy(self)

    def signature(self) -> Hashable:
        """Equal for two watches that show the same page in the same state: a
        connection whose snapshot has the signature of a group's watch joins that
        group instead of forming its own."""
        return self.snapshot_key()

    def snapshot(
        self, rows: RowCache
    ) -> tuple[object, list[tuple[Hashable, Fragment]]]:
        return None, []

    def snapshot_key(self) -> Hashable:
        """Watches with equal keys share one snapshot when they connect together
        (a server restart reconnects every tab at once)."""
        return (self.kind, self.environment_id)

    def signal_keys(self) -> tuple[Hashable, ...]:
        """The LiveSignal topics this page shows (see realtime.hub)."""
        return ()

    def install(self, state: object) -> None:
        pass


class RunPageWatch(Watch):
    """A run page: its header, metadata, attempts and related runs (children's
    statuses included) are re-rendered when the run or a child changes; its history
    gets new event rows appended."""

    kind = "run"

    def __init__(self, environment: Environment, path: str, run_id: int) -> None:
        super().__init__(environment, path)
        self.run_id = run_id
        self.last_event_id = 0

    def snapshot(self, rows: RowCache) -> tuple[int, list[tuple[Hashable, Fragment]]]:
        run = load_run_page(self.run_id)
        if run is None:
            return self.last_event_id, []
        events, last_id = latest_event_rows(run)
        tbody = (
            f'<tbody id="run-events" data-last-event-id="{last_id}">{events}</tbody>'
        )
        return last_id, [
            ("run-events", Fragment(tbody, table=True)),
            ("run", Fragment(render_run_fragments(run))),
        ]

    def snapshot_key(self) -> Hashable:
        return (self.kind, self.run_id)

    def signature(self) -> Hashable:
        return (self.snapshot_key(), self.last_event_id)

    def install(self, state: int) -> None:
        self.last_event_id = state

    def on_run(
        self, fragments: str | None, events: tuple[str, int] | None, out: Outbox
    ) -> None:
        if fragments is not None:
            out.offer("run", Fragment(fragments))
        if events is not None and events[1] > self.last_event_id:
            html, last_id = events
            key = ("events", self.last_event_id)
            placement = "beforeend:#run-events"
            out.offer(key, Fragment(html, placement, table=True, insert=True))
            self.last_event_id = last_id


def filter_key(query: QueryDict) -> str:
    """Identifies the filter regardless of page position: one matcher per distinct key."""
    kept = [
        (name, value)
        for name, values in sorted(query.lists())
        if name not in (*CURSOR_PARAMS, "size")
        for value in values
    ]
    return "&".join(f"{name}={value}" for name, value in kept)


@lru_cache(maxsize=2048)
def _pill(count: int, href: str, capped: bool) -> str:
    return new_runs_pill(count, href, capped=capped)


@dataclass
class ListState:
    shown: dict[int, tuple[RowKey, str]] = field(
        default_factory=dict
    )  # id → key, friendly id
    order: list[RowKey] = field(default_factory=list)  # ascending
    top: RowKey | None = None  # newest row of the page (None: first page, no limit)
    bottom: RowKey | None = None  # oldest row (None: last page, no limit)


class RunsListWatch(Watch):
    """A runs list page: its rows are updated in place, matching new runs are inserted
    where they belong (page 1: at the top), runs newer than a later page's first row
    are counted in an "N new runs" pill, shown runs that stop matching are marked
    stale. Filters are those of the page's query string."""

    kind = "runs"
    FIXED: tuple[str, ...] = ()  # filters the page imposes (not the operator's)

    def __init__(self, environment: Environment, path: str, query: QueryDict) -> None:
        super().__init__(environment, path)
        self.set_query(query)

    def set_query(self, query: QueryDict) -> None:
        self.query = query
        self.key = filter_key(query)
        run_filter = RunFilter(query, queryset=Run.objects.none())
        try:
            self.size: int | None = page_size(query)
        except InvalidPageSize:
            self.size = None
        # Bad input: the page shows the errors and no rows, so nothing is live.
        valid = self.size is not None and run_filter.is_valid()
        self.matcher = RunMatcher.from_filter(run_filter) if valid else None
        fixed = dict.fromkeys(self.FIXED)
        self.filtered = valid and bool(filter_chips(run_filter, query, fixed))
        self.state = ListState()
        self.inserted = 0
        self.pill: set[int] = set()
        self.stale: set[int] = set()  # shown runs marked as no longer matching

    def with_query(self, query: QueryDict) -> RunsListWatch:
        """The same page with other filters or at another position, no state."""
        watch = copy.copy(self)
        watch.set_query(query)
        return watch

    def signature(self) -> Hashable:
        state = self.state
        return (
            self.snapshot_key(),
            tuple(state.order),
            state.top,
            state.bottom,
            frozenset(self.stale),
            self.inserted,
            frozenset(self.pill),
        )

    @property
    def top_href(self) -> str:
        query = self.query.copy()
        for name in CURSOR_PARAMS:
            query.pop(name, None)
        encoded = query.urlencode()
        return f"{self.path}?{encoded}" if encoded else self.path

    @property
    def bottom(self) -> RowKey | None:
        return self.state.bottom

    def shows(self, run_id: int) -> bool:
        return run_id in self.state.shown

    # --- relay thread -----------------------------------------------------------
    def snapshot(
        self, rows: RowCache
    ) -> tuple[ListState, list[tuple[Hashable, Fragment]]]:
        if self.matcher is None:
            return ListState(), []  # the page shows the filter errors, nothing is live
        runs = with_match_columns(Run.objects.filter(environment=self.environment))
        run_filter = RunFilter(self.query, queryset=runs, environment=self.environment)
        try:
            page = paginate(
                run_filter.qs,
                size=self.size,
                after=self.query.get("after"),
                before=self.query.get("before"),
            )
        except InvalidCursor:
            return ListState(), []
        items = page.items
        state = ListState(
            shown={r.pk: ((r.created_at, r.pk), r.friendly_id) for r in items},
            order=sorted((r.created_at, r.pk) for r in items),
            top=(items[0].created_at, items[0].pk)
            if items and page.previous_cursor
            else None,
            bottom=(items[-1].created_at, items[-1].pk)
            if items and page.next_cursor
            else None,
        )
        fragments = [
            (
                "runs-body",
                Fragment(
                    runs_body(
                        [rows.row(r) for r in items],
                        self.environment,
                        filtered=self.filtered or bool(page.previous_cursor),
                    ),
                    table=True,
                ),
            ),
            ("new-runs", Fragment(_pill(0, self.top_href, False))),
            ("runs-count", Fragment(runs_count(len(items)))),
        ]
        return state, fragments

    def snapshot_key(self) -> Hashable:
        return (self.kind, self.environment_id, self.query.urlencode())

    def install(self, state: ListState) -> None:
        self.state = ListState(
            dict(state.shown), list(state.order), state.top, state.bottom
        )
        self.inserted = 0
        self.pill = set()
        self.stale = set()

    # --- event loop -------------------------------------------------------------
    def on_shown_run(
        self, run_id: int, fragment: Fragment, stale: bool, out: Outbox
    ) -> None:
        """A run this page shows changed; `fragment` replaces its row (with the stale
        mark when it no longer matches). The hub builds it once for every page."""
        if stale:
            self.stale.add(run_id)
        else:
            self.stale.discard(run_id)
        out.offer(("row", run_id), fragment)

    def on_matching_run(self, run: Run, html: str, out: Outbox) -> bool:
        """A run this page does not show now matches its filters. Returns True when it
        was inserted (the page shows it from now on)."""
        key = (run.created_at, run.pk)
        state = self.state
        if state.bottom is not None and key < state.bottom:
            return False  # it belongs to a later page
        if (
            state.top is not None and key > state.top
        ) or self.inserted >= MAX_INSERTED_ROWS:
            self._count_in_pill(run.pk, out)
            return False
        position = bisect.bisect_left(state.order, key)
        if not state.order:
            placement = "beforeend:#runs-body"
            out.offer("runs-empty", Fragment("", "delete:#runs-empty", table=True))
        elif position == 0:
            placement = "beforeend:#runs-body"  # older than every shown row
        else:
            older = state.order[position - 1]
            placement = f"beforebegin:#run-{self._friendly_id(older)}"
        state.order.insert(position, key)
        state.shown[run.pk] = (key, run.friendly_id)
        self.inserted += 1
        fresh = html.replace('class="run-row', 'class="run-row fresh', 1)  # highlight
        out.offer(("row", run.pk), Fragment(fresh, placement, table=True, insert=True))
        out.offer("runs-count", Fragment(runs_count(len(state.shown))))
        return True

    def _friendly_id(self, key: RowKey) -> str:
        return self.state.shown[key[1]][1]

    def _count_in_pill(self, run_id: int, out: Outbox) -> None:
        if run_id in self.pill:
            return
        if len(self.pill) < MAX_PILL_RUNS:
            self.pill.add(run_id)
        capped = len(self.pill) >= MAX_PILL_RUNS
        out.offer("new-runs", Fragment(_pill(len(self.pill), self.top_href, capped)))


class BatchPageWatch(RunsListWatch):
    """A batch page: its summary (status, counts, progress by status) and its runs
    table, which is the runs list with the batch filter fixed."""

    kind = "batch"
    FIXED = ("batch", "period")

    def __init__(
        self, environment: Environment, path: str, query: QueryDict, batch: Batch
    ) -> None:
        self.batch_id = batch.pk
        self.batch_friendly_id = batch.friendly_id
        super().__init__(environment, path, query)

    def set_query(self, query: QueryDict) -> None:
        fixed = query.copy()
        fixed["batch"] = self.batch_friendly_id
        fixed["period"] = "all"
        super().set_query(fixed)

    def signal_keys(self) -> tuple[Hashable, ...]:
        return (("batch", self.batch_id),)

    def snapshot(
        self, rows: RowCache
    ) -> tuple[ListState, list[tuple[Hashable, Fragment]]]:
        state, fragments = super().snapshot(rows)
        batch = (
            Batch.objects.select_related("environment").filter(pk=self.batch_id).first()
        )
        if batch is not None:
            fragments.append(("batch", Fragment(render_batch_fragments(batch))))
        return state, fragments


class BulkActionWatch(Watch):
    """A bulk action page: its summary (status, progress bar, counts) and its latest
    processed runs."""

    kind = "bulk"

    def __init__(self, environment: Environment, path: str, bulk_id: int) -> None:
        super().__init__(environment, path)
        self.bulk_id = bulk_id

    def signal_keys(self) -> tuple[Hashable, ...]:
        return (("bulk", self.bulk_id),)

    def snapshot_key(self) -> Hashable:
        return (self.kind, self.bulk_id)

    def snapshot(self, rows: RowCache) -> tuple[None, list[tuple[Hashable, Fragment]]]:
        bulk = load_bulk_action(self.bulk_id)
        return None, bulk_page_fragments(bulk) if bulk is not None else []


class BulkActionsListWatch(Watch):
    """The bulk actions list: rows update in place, new bulk actions appear on top."""

    kind = "bulk-list"

    def __init__(self, environment: Environment, path: str) -> None:
        super().__init__(environment, path)
        self.since = timezone.now()  # bulk actions created later are not on the page
        self.inserted: set[int] = set()

    def signal_keys(self) -> tuple[Hashable, ...]:
        return (("bulk-env", self.environment_id),)

    def fresh(self) -> BulkActionsListWatch:
        watch = copy.copy(self)
        watch.inserted = set()
        return watch

    def signature(self) -> Hashable:
        # What the page shows depends on when it was loaded (`since`): not shared.
        return (self.snapshot_key(), id(self))

    def on_bulk_row(self, bulk_id: int, row: BulkRow, out: Outbox) -> None:
        if row.created_at > self.since and bulk_id not in self.inserted:
            self.inserted.add(bulk_id)
            fragment = Fragment(
                row.html, "afterbegin:#bulk-rows", table=True, insert=True
            )
        else:
            fragment = Fragment(
                row.html, f"outerHTML:#bulk-row-{row.friendly_id}", table=True
            )
        out.offer(("bulk-row", bulk_id), fragment)


class DeploymentsWatch(Watch):
    """The deployments list: a new version (or a new current one) appears at once."""

    kind = "deployments"

    def signal_keys(self) -> tuple[Hashable, ...]:
        return (("deployment-env", self.environment_id),)

    def snapshot(self, rows: RowCache) -> tuple[None, list[tuple[Hashable, Fragment]]]:
        return None, deployments_fragments(self.environment_id)
