"""The live feed of one server process: one relay, many connections.

The relay reads the committed change feed (realtime.feed) after the last ids it saw,
loads each changed run once, matches it against each distinct filter the open runs
lists use, renders its row once, and hands the result to the connections that show
or want it; each connection's coalescer decides when its next message leaves. All
database work and rendering happen in one dedicated thread; everything else in the
event loop. See docs/realtime.md for the design and its measurements.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import defaultdict
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from dashboard.presenters import (
    EVENT_KINDS,
    render_batch_fragments,
    render_run_fragments,
)
from realtime import publish
from realtime.coalesce import WINDOW_SECONDS, Coalescer, Fragment, assemble
from realtime.feed import FeedBatch, FeedCursor
from realtime.fragments import (
    BulkRow,
    RowCache,
    bulk_page_fragments,
    deployments_fragments,
    env_counters,
    event_rows_after,
    live_state,
    load_bulk_action,
    load_run_page,
)
from realtime.watches import RowKey, RunPageWatch, RunsListWatch, Watch
from runs.filter_match import RunMatcher, bulk_actions_of, load_runs_for_matching
from runs.lifecycle import EVENTS_CHANNEL
from runs.models import Batch, Run

logger = logging.getLogger("runwatch.realtime")

POLL_SECONDS = 0.1  # SQLite, or PostgreSQL while LISTEN is down
SAFETY_POLL_SECONDS = 2.0  # PostgreSQL with LISTEN up
GAP_POLL_SECONDS = 0.05  # while ids are missing below the newest one read
BATCH_SECONDS = 0.01  # after a wake-up, let a burst of commits land in one read
RETRY_SECONDS = (0.25, 0.5, 1.0, 2.0, 5.0)
COUNTERS_SECONDS = 1.0  # header counters are recomputed at most this often per env
COUNTED_KINDS = frozenset({"status"})  # what can change the executing/queued counts


class Sender(Protocol):
    async def send_message(self, message: dict) -> None:
        """Send an ASGI `websocket.send` message as is (shared by many connections:
        it must not be modified)."""


class Connection:
    def __init__(self, sender: Sender, watch: Watch) -> None:
        self.sender = sender
        self.watch = watch
        self.coalescer = Coalescer()
        self.needs_snapshot = True
        self.generation = (
            0  # bumped when the watch changes; stale snapshots are dropped
        )


@dataclass(frozen=True)
class Interest:
    """What this process's connections watch, copied for the relay thread."""

    shown: frozenset[int]
    matchers: dict[int, dict[str, RunMatcher]]  # env → filter key → matcher
    bottoms: dict[int, RowKey | None]  # env → oldest row a list may insert (None: any)
    needs_bulk: bool
    run_pages: frozenset[int] = frozenset()
    event_cursors: dict[int, frozenset[int]] = field(default_factory=dict)
    counter_envs: frozenset[int] = frozenset()
    signal_keys: frozenset[Hashable] = frozenset()  # ("batch", id), ("bulk-env", env)…


@dataclass
class CycleResult:
    batch: FeedBatch
    runs: dict[int, Run] = field(default_factory=dict)
    matches: dict[tuple[str, int], bool] = field(default_factory=dict)
    rows: dict[int, str] = field(default_factory=dict)
    stale_rows: dict[int, str] = field(default_factory=dict)
    run_fragments: dict[int, str] = field(default_factory=dict)  # run pages
    event_rows: dict[tuple[int, int], tuple[str, int]] = field(default_factory=dict)
    counters: dict[int, str] = field(default_factory=dict)  # env → header counters
    signal_fragments: dict[Hashable, list] = field(default_factory=dict)
    bulk_rows: dict[tuple[int, int], BulkRow] = field(default_factory=dict)  # env, id
    snapshots: list[tuple[Connection, int, Any, list]] = field(default_factory=list)


class CountersCache:
    """Header counters per environment: recomputed when runs there changed status
    (`fresh`), reused for up to COUNTERS_SECONDS by snapshots (`recent`), so a burst
    of connections does not count the same runs again and again."""

    def __init__(self) -> None:
        self._html: dict[int, tuple[float, str]] = {}

    def fresh(self, env: int) -> str:
        html = env_counters(env)
        self._html[env] = (time.monotonic(), html)
        return html

    def recent(self, env: int) -> str:
        taken, html = self._html.get(env, (-COUNTERS_SECONDS, ""))
        if time.monotonic() - taken >= COUNTERS_SECONDS:
            return self.fresh(env)
        return html


def run_cycle(
    cursor: FeedCursor,
    interest: Interest,
    rows: RowCache,
    snapshots: list[tuple[Connection, int]],
    counters: CountersCache,
) -> CycleResult:
    """One read of the feed, in the relay thread: load, match and render what changed,
    then take the snapshots connections asked for (after the read, so a snapshot
    never misses a change the next read would not bring)."""
    result = CycleResult(batch=cursor.read())
    result.runs = _load_changed_runs(result.batch, interest)
    bulk = bulk_actions_of(result.runs) if interest.needs_bulk and result.runs else {}
    now = timezone.now()
    for pk, run in result.runs.items():
        matchers = interest.matchers.get(run.environment_id, {})
        outcome = {
            key: m.matches(run, bulk.get(pk, ()), now) for key, m in matchers.items()
        }
        result.matches.update({(key, pk): ok for key, ok in outcome.items()})
        shown = pk in interest.shown
        if shown or any(outcome.values()):
            result.rows[pk] = rows.row(run)
        if shown and not all(outcome.values()):
            result.stale_rows[pk] = rows.row(run, stale=True)
    if interest.run_pages:
        _render_run_pages(result, interest)
    if interest.signal_keys:
        _render_signalled(result, interest.signal_keys)
    result.counters = {env: counters.fresh(env) for env in interest.counter_envs}
    shared: dict[Hashable, tuple[Any, list]] = {}
    for conn, generation in snapshots:
        key = conn.watch.snapshot_key()
        if key not in shared:
            shared[key] = conn.watch.snapshot(rows)
        state, fragments = shared[key]
        fragments = list(fragments)
        env = conn.watch.environment_id
        fragments.append(("counters", Fragment(counters.recent(env))))
        result.snapshots.append((conn, generation, state, fragments))
    return result


def _render_run_pages(result: CycleResult, interest: Interest) -> None:
    """Fragments of watched runs that changed or whose children changed, and their
    new history rows (once per distinct position of the pages watching them)."""
    changes = result.batch.runs
    parents = Run.objects.filter(
        pk__in=[pk for pk, c in changes.items() if not c.only_logs],
        parent_id__in=interest.run_pages,
    ).values_list("parent_id", flat=True)
    refresh = {
        pk for pk in interest.run_pages if pk in changes and not changes[pk].only_logs
    }
    for pk in refresh | set(parents):
        run = load_run_page(pk)
        if run is not None:
            result.run_fragments[pk] = render_run_fragments(run)
    for pk, cursors in interest.event_cursors.items():
        if pk in changes and changes[pk].kinds & set(EVENT_KINDS):
            for after in cursors:
                result.event_rows[(pk, after)] = event_rows_after(pk, after)


def _render_signalled(result: CycleResult, keys: frozenset[Hashable]) -> None:
    """Batch, bulk action and deployment fragments of the pages open on them: once
    per read per object. A batch's summary also follows its runs' status changes."""
    signals = result.batch.signals
    batches = {
        oid for kind, oid, _ in signals if kind == "batch" and ("batch", oid) in keys
    }
    watched = [key[1] for key in keys if key[0] == "batch"]
    changed = [pk for pk, c in result.batch.runs.items() if c.kinds & COUNTED_KINDS]
    if watched and changed:
        batches |= set(
            Run.objects.filter(pk__in=changed, batch_id__in=watched).values_list(
                "batch_id", flat=True
            )
        )
    for batch in Batch.objects.select_related("environment").filter(pk__in=batches):
        html = render_batch_fragments(batch)
        result.signal_fragments[("batch", batch.pk)] = [("batch", Fragment(html))]
    for kind, oid, env in signals:
        if kind == "bulk" and (("bulk", oid) in keys or ("bulk-env", env) in keys):
            bulk = load_bulk_action(oid)
            if bulk is None:
                continue
            if ("bulk", oid) in keys:
                result.signal_fragments[("bulk", oid)] = bulk_page_fragments(bulk)
            if ("bulk-env", env) in keys:
                result.bulk_rows[(env, oid)] = BulkRow.of(bulk)
        elif kind == "deployment" and ("deployment-env", env) in keys:
            result.signal_fragments[("deployment-env", env)] = deployments_fragments(
                env
            )


def _load_changed_runs(batch: FeedBatch, interest: Interest) -> dict[int, Run]:
    """Changed runs some list may show: shown ones, and others recent enough to be
    inserted somewhere (older than every list's bottom row they cannot be)."""
    wanted = Q(pk__in=[pk for pk in batch.runs if pk in interest.shown])
    for env, bottom in interest.bottoms.items():
        ids = [
            pk
            for pk, change in batch.runs.items()
            if change.environment_id == env and not change.only_logs
        ]
        if not ids:
            continue
        if bottom is None:
            wanted |= Q(pk__in=ids)
        else:
            wanted |= Q(pk__in=ids, created_at__gte=bottom[0])
    if not batch.runs or wanted == Q(pk__in=[]):
        return {}
    return {
        run.pk: run for run in load_runs_for_matching(list(batch.runs)).filter(wanted)
    }


def _close_thread_connection() -> None:
    with contextlib.suppress(Exception):
        connection.close()


class Hub:
    """One per event loop (a daphne process has one)."""

    _hubs: dict[asyncio.AbstractEventLoop, Hub] = {}

    @classmethod
    def current(cls) -> Hub:
        loop = asyncio.get_running_loop()
        hub = cls._hubs.get(loop)
        if hub is None:
            hub = cls._hubs[loop] = cls(loop)
        return hub

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.connections: set[Connection] = set()
        self.row_index: defaultdict[int, set[Connection]] = defaultdict(set)
        self.lists: defaultdict[int, defaultdict[str, set[Connection]]] = defaultdict(
            lambda: defaultdict(set)
        )
        self.run_pages: defaultdict[int, set[Connection]] = defaultdict(set)
        self.by_env: defaultdict[int, set[Connection]] = defaultdict(set)
        self.signal_index: defaultdict[Hashable, set[Connection]] = defaultdict(set)
        self.counters_dirty: set[int] = set()
        self.counters_next: dict[int, float] = {}
        self.state = "open"
        self.state_title = ""
        self.rows = RowCache()
        self.counters = CountersCache()
        self.cursor = FeedCursor()
        self.listening = False
        self._wake = asyncio.Event()
        self._flush_wake = asyncio.Event()
        self.window = WINDOW_SECONDS
        self._next_tick = -math.inf
        self.sequence = 0  # flush ticks so far: the data-seq of their messages
        self.frames_built = 0
        self._tasks: list[asyncio.Task] = []
        self._executor: ThreadPoolExecutor | None = None

    # --- connections --------------------------------------------------------------
    def attach(self, sender: Sender, watch: Watch) -> Connection:
        conn = Connection(sender, watch)
        self.connections.add(conn)
        self._index_list(conn)
        if not self._tasks:
            self._start()
        self._wake.set()
        return conn

    async def detach(self, conn: Connection) -> None:
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        self._unindex_rows(conn)
        self._unindex_list(conn)
        if not self.connections:
            await self._stop()

    def rewatch(self, conn: Connection, path: str, query) -> None:
        """The page swapped its runs table for other filters or another page."""
        watch = conn.watch
        if not isinstance(watch, RunsListWatch) or path != watch.path:
            return
        self._unindex_list(conn)
        self._unindex_rows(conn)
        watch.set_query(query)
        self._index_list(conn)
        conn.generation += 1
        conn.needs_snapshot = True
        # What is pending was for the rows the page no longer shows; the snapshot
        # brings the new table (and the header counters).
        conn.coalescer.reset([])
        self._wake.set()

    def ack(self, conn: Connection, sequence: int) -> None:
        coalescer = conn.coalescer
        blocked = coalescer.in_flight >= coalescer.max_in_flight
        coalescer.ack(sequence)
        if blocked and len(coalescer):  # it may send again: at the next tick
            self._flush_wake.set()

    def _index_list(self, conn: Connection) -> None:
        watch = conn.watch
        self.by_env[watch.environment_id].add(conn)
        if isinstance(watch, RunsListWatch):
            self.lists[watch.environment_id][watch.key].add(conn)
        if isinstance(watch, RunPageWatch):
            self.run_pages[watch.run_id].add(conn)
        for key in watch.signal_keys():
            self.signal_index[key].add(conn)

    def _unindex_list(self, conn: Connection) -> None:
        watch = conn.watch
        _discard(self.by_env, watch.environment_id, conn)
        if isinstance(watch, RunPageWatch):
            _discard(self.run_pages, watch.run_id, conn)
        for key in watch.signal_keys():
            _discard(self.signal_index, key, conn)
        if isinstance(watch, RunsListWatch):
            groups = self.lists.get(watch.environment_id)
            if groups is not None:
                groups.get(watch.key, set()).discard(conn)
                if not groups.get(watch.key, True):
                    del groups[watch.key]
                if not groups:
                    del self.lists[watch.environment_id]

    def _index_rows(self, conn: Connection) -> None:
        if isinstance(conn.watch, RunsListWatch):
            for pk in conn.watch.state.shown:
                self.row_index[pk].add(conn)

    def _unindex_rows(self, conn: Connection) -> None:
        if isinstance(conn.watch, RunsListWatch):
            for pk in conn.watch.state.shown:
                watchers = self.row_index.get(pk)
                if watchers is not None:
                    watchers.discard(conn)
                    if not watchers:
                        del self.row_index[pk]

    # --- lifecycle ----------------------------------------------------------------
    def _start(self) -> None:
        self.cursor = FeedCursor()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="runwatch-live")
        self._tasks = [
            self.loop.create_task(self._relay(), name="runwatch-live-relay"),
            self.loop.create_task(self._flush(), name="runwatch-live-flush"),
        ]
        if settings.IS_POSTGRES:
            self._tasks.append(
                self.loop.create_task(self._listen(), name="runwatch-live-listen")
            )
        publish.subscribe(self._on_local_commit)

    async def _stop(self) -> None:
        publish.unsubscribe(self._on_local_commit)
        tasks, self._tasks = self._tasks, []
        executor, self._executor = self._executor, None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if executor is not None:
            with contextlib.suppress(Exception):
                await self.loop.run_in_executor(executor, _close_thread_connection)
            executor.shutdown(wait=False)
        self.listening = False
        self.state = "open"
        if self._hubs.get(self.loop) is self and not self.connections:
            del self._hubs[self.loop]

    def _on_local_commit(self, event: publish.RunChanged) -> None:
        """A run changed in this process: read the feed now instead of at the next poll."""
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self.loop.call_soon_threadsafe(self._wake.set)

    async def _in_thread(self, func, *args):
        """Run in the relay's thread, whose database connection stays open between
        reads (it is closed and reopened only after a failure)."""
        return await self.loop.run_in_executor(self._executor, func, *args)

    # --- the relay ----------------------------------------------------------------
    async def _relay(self) -> None:
        failures = 0
        while True:
            wanted = [(c, c.generation) for c in self.connections if c.needs_snapshot]
            try:
                result = await self._in_thread(
                    run_cycle,
                    self.cursor,
                    self._interest(),
                    self.rows,
                    wanted,
                    self.counters,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away, or a bug: keep serving
                failures += 1
                logger.warning("live feed read failed (%s): %s", failures, exc)
                self._set_state(
                    "down",
                    "Live feed interrupted: the database is unreachable. Retrying…",
                )
                self.cursor.check_backlog = True
                await self._in_thread(_close_thread_connection)
                await asyncio.sleep(
                    RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1]
                )
                continue
            if failures:
                failures = 0
                logger.info("live feed recovered")
            self._set_state("open", "")
            try:
                self._dispatch(result)
            except Exception:  # a bug in one watch must not stop the feed for all
                logger.exception("live feed dispatch failed")
            if result.batch.more or any(c.needs_snapshot for c in self.connections):
                await asyncio.sleep(0)
                continue
            await self._sleep_until_woken()

    async def _sleep_until_woken(self) -> None:
        if self.cursor.has_gaps:
            timeout = GAP_POLL_SECONDS
        elif self.listening:
            timeout = SAFETY_POLL_SECONDS
        else:
            timeout = POLL_SECONDS
        if self.counters_dirty:
            soonest = min(self.counters_next.get(env, 0) for env in self.counters_dirty)
            timeout = max(0.0, min(timeout, soonest - time.monotonic()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()
        await asyncio.sleep(BATCH_SECONDS)

    def _interest(self) -> Interest:
        matchers: dict[int, dict[str, RunMatcher]] = {}
        bottoms: dict[int, RowKey | None] = {}
        for env, groups in self.lists.items():
            watches = [c.watch for conns in groups.values() for c in conns]
            watches = [w for w in watches if w.matcher is not None]
            if not watches:
                continue
            matchers[env] = {w.key: w.matcher for w in watches}
            edges = [w.bottom for w in watches]
            bottoms[env] = None if None in edges else min(edges)
        needs_bulk = any(
            m.bulk_action
            for env_matchers in matchers.values()
            for m in env_matchers.values()
        )
        return Interest(
            shown=frozenset(self.row_index),
            matchers=matchers,
            bottoms=bottoms,
            needs_bulk=needs_bulk,
            run_pages=frozenset(self.run_pages),
            event_cursors={
                pk: frozenset(c.watch.last_event_id for c in conns)
                for pk, conns in self.run_pages.items()
            },
            counter_envs=self._counters_due(),
            signal_keys=frozenset(self.signal_index),
        )

    def _counters_due(self) -> frozenset[int]:
        """Environments whose header counters are recomputed this read: changed since
        the last time, and not within COUNTERS_SECONDS of it (two COUNTs each)."""
        now = time.monotonic()
        due = {
            env
            for env in self.counters_dirty
            if env in self.by_env and self.counters_next.get(env, 0) <= now
        }
        self.counters_dirty -= due
        self.counters_dirty &= set(self.by_env)
        for env in due:
            self.counters_next[env] = now + COUNTERS_SECONDS
        return frozenset(due)

    def _dispatch(self, result: CycleResult) -> None:
        snapped = self._install_snapshots(result)
        for pk, run in result.runs.items():
            html = result.rows.get(pk)
            # one fragment object per row version, shared by every connection, so
            # connections with equal pending fragments share a message (Frames)
            fresh = replaced_row(run, html)
            stale = replaced_row(run, result.stale_rows.get(pk))
            by_filter: dict[str, Fragment | None] = {}
            for conn in list(self.row_index.get(pk, ())):
                if conn in snapped or conn.needs_snapshot:
                    continue
                key = conn.watch.key
                if key not in by_filter:
                    matches = result.matches.get((key, pk), True)
                    by_filter[key] = fresh if matches else stale
                fragment = by_filter[key]
                if fragment is not None:
                    conn.watch.on_shown_run(pk, fragment, conn.coalescer)
            if html is not None:
                self._offer_matching(run, html, result, snapped)
        self._offer_run_pages(result, snapped)
        self._offer_signalled(result, snapped)
        for env, html in result.counters.items():
            counters = Fragment(html)
            for conn in self.by_env.get(env, ()):
                if conn not in snapped:
                    conn.coalescer.offer("counters", counters)
        for change in result.batch.runs.values():
            if change.kinds & COUNTED_KINDS and change.environment_id in self.by_env:
                self.counters_dirty.add(change.environment_id)
        for conn in self.connections:
            if conn.coalescer.overflowed or result.batch.skipped_ahead:
                conn.needs_snapshot = True
        self._flush_wake.set()

    def _install_snapshots(self, result: CycleResult) -> set[Connection]:
        snapped: set[Connection] = set()
        for conn, generation, state, fragments in result.snapshots:
            if conn not in self.connections or generation != conn.generation:
                continue
            self._unindex_rows(conn)
            conn.watch.install(state)
            self._index_rows(conn)
            conn.coalescer.reset(fragments)
            conn.needs_snapshot = False
            snapped.add(conn)
        return snapped

    def _offer_matching(
        self, run: Run, html: str, result: CycleResult, snapped: set[Connection]
    ) -> None:
        for key, conns in self.lists.get(run.environment_id, {}).items():
            if not result.matches.get((key, run.pk)):
                continue
            for conn in conns:
                # A list waiting for its snapshot does not know yet what its page
                # shows (after a rewatch): the snapshot will include this run.
                if conn in snapped or conn.needs_snapshot or conn.watch.shows(run.pk):
                    continue
                if conn.watch.on_matching_run(run, html, conn.coalescer):
                    self.row_index[run.pk].add(conn)

    def _offer_signalled(self, result: CycleResult, snapped: set[Connection]) -> None:
        for key, fragments in result.signal_fragments.items():
            for conn in self.signal_index.get(key, ()):
                if conn not in snapped:
                    for fragment_key, fragment in fragments:
                        conn.coalescer.offer(fragment_key, fragment)
        for (env, bulk_id), row in result.bulk_rows.items():
            for conn in self.signal_index.get(("bulk-env", env), ()):
                if conn not in snapped:
                    conn.watch.on_bulk_row(bulk_id, row, conn.coalescer)

    def _offer_run_pages(self, result: CycleResult, snapped: set[Connection]) -> None:
        for pk, conns in self.run_pages.items():
            fragments = result.run_fragments.get(pk)
            for conn in conns:
                if conn in snapped:
                    continue
                events = result.event_rows.get((pk, conn.watch.last_event_id))
                if fragments is not None or events is not None:
                    conn.watch.on_run(fragments, events, conn.coalescer)

    def _set_state(self, state: str, title: str) -> None:
        if state == self.state:
            return
        self.state, self.state_title = state, title
        empty = Fragment("")  # the message's #live-state carries the state
        for conn in self.connections:
            conn.coalescer.offer("live-state", empty)
        self._flush_wake.set()

    # --- sending ------------------------------------------------------------------
    async def _flush(self) -> None:
        """Flush ticks shared by every connection: at most one per window (stretched
        while a pass takes long, see `_next_tick`), each a pass over the connections
        with something to send. Connections flushed in one tick with the same pending
        fragments get the same frame, assembled once (`Frames`): with a thousand tabs
        on the same list, a tick costs a few assemblies and a thousand sends of an
        already-built string, not a thousand assemblies."""
        while True:
            await self._flush_wake.wait()
            delay = self._next_tick - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._flush_wake.clear()
            started = time.monotonic()
            await self._flush_pass(started)
            took = time.monotonic() - started
            # A pass longer than half a window stretches the next one, so sending
            # never takes more than half of the loop's time: fewer, larger messages
            # (still ≤ 1 update per run per tick, latest state wins) and room left to
            # read the feed, acknowledgements and handshakes.
            self._next_tick = started + max(self.window, 2 * took)

    async def _flush_pass(self, now: float) -> None:
        self.sequence += 1
        frames = Frames(self.state, self.sequence, self.state_title)
        for conn in list(self.connections):
            fragments = conn.coalescer.take(now, self.sequence)
            if fragments is not None:
                message = frames.get(fragments, conn.coalescer.wants_ack)
                try:
                    await conn.sender.send_message(message)
                except Exception as exc:  # the client went away mid-send
                    logger.debug("live send failed: %s", exc)
        self.frames_built += frames.built

    # --- PostgreSQL wake-ups ------------------------------------------------------
    async def _listen(self) -> None:
        import psycopg

        failures = 0
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    **_psycopg_params(), autocommit=True
                )
                async with conn:
                    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    self.listening = True
                    failures = 0
                    self._wake.set()  # catch up on anything committed meanwhile
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                logger.warning("live feed LISTEN failed: %s", exc)
            self.listening = False
            await asyncio.sleep(
                RETRY_SECONDS[min(max(failures, 1), len(RETRY_SECONDS)) - 1]
            )


class Frames:
    """The messages of one flush tick: connections whose pending fragments are the
    same objects get the same ASGI message, assembled once. The hub offers one
    fragment object per row version to every connection that shows the row, so with
    many tabs on the same list a tick assembles a handful of messages. Only the
    acknowledgement request can differ between two connections with the same
    fragments, and it is part of the key. The fragments of every key stay referenced
    until the tick ends, so their ids cannot be reused by other objects meanwhile."""

    def __init__(self, state: str, sequence: int, title: str) -> None:
        self.state, self.sequence, self.title = state, sequence, title
        self._messages: dict[tuple, tuple[dict, list[Fragment]]] = {}
        self.built = 0

    def get(self, fragments: list[Fragment], ack: bool) -> dict:
        key = (ack, *map(id, fragments))
        found = self._messages.get(key)
        if found is None:
            text = assemble(fragments) + live_state(
                self.state, self.sequence, self.title, ack=ack
            )
            message = {"type": "websocket.send", "text": ascii_html(text)}
            found = self._messages[key] = (message, fragments)
            self.built += 1
        return found[0]


def ascii_html(text: str) -> str:
    """The same HTML in ASCII: other characters become character references (the
    fragments have no <script> or <style>, where references are not decoded). The
    server encodes every message to UTF-8 per connection; an ASCII string encodes
    with a copy, one with a single "…" in 20 KB with a character-by-character pass."""
    if text.isascii():
        return text
    return text.encode("ascii", "xmlcharrefreplace").decode("ascii")


def replaced_row(run: Run, html: str | None) -> Fragment | None:
    """A shown row's update: its new HTML, swapped over the old row."""
    if html is None:
        return None
    return Fragment(html, f"outerHTML:#run-{run.friendly_id}", table=True)


def _discard(index: dict, key: int, conn: Connection) -> None:
    conns = index.get(key)
    if conns is not None:
        conns.discard(conn)
        if not conns:
            del index[key]


def _psycopg_params() -> dict[str, Any]:
    params = connection.settings_dict
    return {
        "dbname": params["NAME"],
        "user": params.get("USER") or None,
        "password": params.get("PASSWORD") or None,
        "host": params.get("HOST") or None,
        "port": params.get("PORT") or None,
    }
