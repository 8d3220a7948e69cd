"""The live feed of one server process: one relay, many connections.

The relay reads the committed change feed (realtime.feed) after the last ids it saw,
loads each changed run once, matches it against each distinct filter the open runs
lists use, renders its row once, and hands the result to the groups of connections
that show or want it (realtime.groups: connections showing the same page in the same
state share one watch and one outbox). Shared flush ticks send each connection what
it has not received. All database work and rendering happen in one dedicated
thread; everything else in the event loop. See docs/realtime.md for the design and
its measurements.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import time
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

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
from realtime.coalesce import WINDOW_SECONDS, Fragment
from realtime.feed import FeedBatch, FeedCursor
from realtime.fragments import (
    BulkRow,
    RowCache,
    bulk_page_fragments,
    deployments_fragments,
    env_counters,
    event_rows_after,
    load_bulk_action,
    load_run_page,
)
from realtime.frames import Frames
from realtime.groups import Connection, Group, Groups, Sender
from realtime.watches import RowKey, RunsListWatch, Watch
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
        self.groups = Groups()
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
        if not self._tasks:
            self._start()
        self._wake.set()
        return conn

    async def detach(self, conn: Connection) -> None:
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        self._leave(conn)
        if not self.connections:
            await self._stop()

    def rewatch(self, conn: Connection, path: str, query, nonce: int = 0) -> None:
        """The page swapped its runs table for other filters or another page;
        `nonce` numbers the page's watch changes (echoed in later messages)."""
        watch = conn.watch
        if not isinstance(watch, RunsListWatch) or path != watch.path:
            return
        conn.watch = watch.with_query(query)
        conn.nonce = nonce
        self._resnapshot(conn)

    def ack(self, conn: Connection, sequence: int) -> None:
        reader = conn.reader
        blocked = reader.blocked
        reader.ack(sequence)
        group = conn.group
        if blocked and not reader.blocked and group and reader.has_news(group.outbox):
            self._flush_wake.set()  # it may send again: at the next tick

    def _resnapshot(self, conn: Connection) -> None:
        """Leave the group; the next read takes a fresh snapshot of the page."""
        self._leave(conn)
        conn.generation += 1
        conn.needs_snapshot = True
        self._wake.set()

    def _leave(self, conn: Connection) -> None:
        group, conn.group = conn.group, None
        if group is not None:
            group.members.discard(conn)
            if not group.members:
                self.groups.remove(group)

    # --- lifecycle ----------------------------------------------------------------
    def _start(self) -> None:
        spare_the_collector()
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
        groups = self.groups
        matchers: dict[int, dict[str, RunMatcher]] = {}
        bottoms: dict[int, RowKey | None] = {}
        for env, by_filter in groups.lists.items():
            watches = [g.watch for lists in by_filter.values() for g in lists]
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
            shown=frozenset(groups.rows),
            matchers=matchers,
            bottoms=bottoms,
            needs_bulk=needs_bulk,
            run_pages=frozenset(groups.run_pages),
            event_cursors={
                pk: frozenset(g.watch.last_event_id for g in pages)
                for pk, pages in groups.run_pages.items()
            },
            counter_envs=self._counters_due(),
            signal_keys=frozenset(groups.signals),
        )

    def _counters_due(self) -> frozenset[int]:
        """Environments whose header counters are recomputed this read: changed since
        the last time, and not within COUNTERS_SECONDS of it (two COUNTs each)."""
        now = time.monotonic()
        shown = self.groups.by_env
        due = {
            env
            for env in self.counters_dirty
            if env in shown and self.counters_next.get(env, 0) <= now
        }
        self.counters_dirty -= due
        self.counters_dirty &= set(shown)
        for env in due:
            self.counters_next[env] = now + COUNTERS_SECONDS
        return frozenset(due)

    def _dispatch(self, result: CycleResult) -> None:
        """Apply a read to the groups (once per group, whatever its size), then place
        the connections whose snapshots the read took: after, so that a connection
        joining a group is in the state the group reached with this read."""
        groups = self.groups
        for pk, run in result.runs.items():
            html = result.rows.get(pk)
            # one fragment object per row version, shared by every group
            fresh = replaced_row(run, html)
            stale = replaced_row(run, result.stale_rows.get(pk))
            for group in groups.rows.get(pk, ()):
                matches = result.matches.get((group.watch.key, pk), True)
                fragment = fresh if matches else stale
                if fragment is not None:
                    group.watch.on_shown_run(pk, fragment, not matches, group.outbox)
            if html is not None:
                self._offer_matching(run, html, result)
        self._offer_run_pages(result)
        self._offer_signalled(result)
        for env, html in result.counters.items():
            counters = Fragment(html)
            for group in groups.by_env.get(env, ()):
                group.outbox.offer("counters", counters)
        for change in result.batch.runs.values():
            if change.kinds & COUNTED_KINDS and change.environment_id in groups.by_env:
                self.counters_dirty.add(change.environment_id)
        if result.batch.skipped_ahead:
            for conn in list(self.connections):
                self._resnapshot(conn)
        for group in list(groups.all):
            if group.outbox.overflowing:
                self._shed(group)
        self._install_snapshots(result)
        self._flush_wake.set()

    def _shed(self, group: Group) -> None:
        """Too much is pending in a group's outbox: the members furthest behind (held
        back by flow control) take a fresh snapshot instead; if the others' share is
        still too much (hundreds of keys changed within one window), all of them do."""
        newest = max(conn.reader.cursor for conn in group.members)
        for conn in list(group.members):
            if conn.reader.cursor < newest:
                self._resnapshot(conn)
        group.outbox.prune(newest)
        if group.outbox.overflowing:
            for conn in list(group.members):
                self._resnapshot(conn)

    def _install_snapshots(self, result: CycleResult) -> None:
        for conn, generation, state, fragments in result.snapshots:
            if conn not in self.connections or generation != conn.generation:
                continue
            watch = conn.watch.fresh()
            watch.install(state)
            group = self.groups.find(watch)
            if group is None:
                group = Group(watch)
                self.groups.add(group)
            group.members.add(conn)
            group.joined = True
            conn.group = group
            conn.reader.start(group.outbox.version, [f for _, f in fragments])
            conn.needs_snapshot = False

    def _offer_matching(self, run: Run, html: str, result: CycleResult) -> None:
        for key, lists in self.groups.lists.get(run.environment_id, {}).items():
            if not result.matches.get((key, run.pk)):
                continue
            for group in lists:
                watch = group.watch
                if not watch.shows(run.pk) and watch.on_matching_run(
                    run, html, group.outbox
                ):
                    self.groups.rows[run.pk].add(group)

    def _offer_signalled(self, result: CycleResult) -> None:
        signals = self.groups.signals
        for key, fragments in result.signal_fragments.items():
            for group in signals.get(key, ()):
                for fragment_key, fragment in fragments:
                    group.outbox.offer(fragment_key, fragment)
        for (env, bulk_id), row in result.bulk_rows.items():
            for group in signals.get(("bulk-env", env), ()):
                group.watch.on_bulk_row(bulk_id, row, group.outbox)

    def _offer_run_pages(self, result: CycleResult) -> None:
        for pk, pages in self.groups.run_pages.items():
            fragments = result.run_fragments.get(pk)
            for group in pages:
                events = result.event_rows.get((pk, group.watch.last_event_id))
                if fragments is not None or events is not None:
                    group.watch.on_run(fragments, events, group.outbox)

    def _set_state(self, state: str, title: str) -> None:
        if state == self.state:
            return
        self.state, self.state_title = state, title
        empty = Fragment("")  # the message's #live-state carries the state
        for group in self.groups.all:
            group.outbox.offer("live-state", empty)
        self._flush_wake.set()

    # --- sending ------------------------------------------------------------------
    async def _flush(self) -> None:
        """Flush ticks shared by every connection: at most one per window (stretched
        while a pass takes long, see `_next_tick`), each a pass over the groups with
        something to send."""
        while True:
            await self._flush_wake.wait()
            delay = self._next_tick - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._flush_wake.clear()
            started = time.monotonic()
            try:
                await self._flush_pass()
            except Exception:  # a bug in one message must not stop the feed for all
                logger.exception("live feed flush failed")
            took = time.monotonic() - started
            # A pass longer than half a window stretches the next one, so sending
            # never takes more than half of the loop's time: fewer, larger messages
            # (still ≤ 1 update per run per tick, latest state wins) and room left to
            # read the feed, acknowledgements and handshakes.
            self._next_tick = started + max(self.window, 2 * took)

    async def _flush_pass(self) -> None:
        self.sequence += 1
        frames = Frames(self.state, self.sequence, self.state_title)
        for group in [g for g in self.groups.all if g.needs_flush]:
            await self._flush_group(group, frames)
        self.frames_built += frames.built

    async def _flush_group(self, group: Group, frames: Frames) -> None:
        """Send each member what it has not received (members in step share one
        message), then forget what all of them have."""
        outbox = group.outbox
        group.flushed, group.lagging, group.joined = outbox.version, False, False
        for conn in list(group.members):
            reader = conn.reader
            if not reader.has_news(outbox):
                continue
            if reader.blocked:  # it gets the latest of everything once it acks
                group.lagging = True
                continue
            message, version = frames.get(group, reader, conn.nonce)
            reader.took(version, self.sequence)
            try:
                await conn.sender.send_message(message)
            except Exception as exc:  # the client went away mid-send
                logger.debug("live send failed: %s", exc)
        if group.members:
            outbox.prune(min(conn.reader.cursor for conn in group.members))

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


_collector_spared = False


def spare_the_collector() -> None:
    """Keep full garbage collections from stalling every open websocket at once.

    A server process with a thousand websockets holds a few million long-lived objects
    (Django's, the server's, each connection's); with Python's default thresholds a
    full collection ran every few seconds there and took 100-300 ms, a pause of every
    connection (docs/realtime.md). What exists when the live feed starts (modules,
    URLconfs, templates) is moved out of the collector's sight for good, and young
    collections run about fourteen times less often. Once per process."""
    global _collector_spared
    if not _collector_spared:
        _collector_spared = True
        gc.freeze()
        gc.set_threshold(10_000, 50, 100)


def replaced_row(run: Run, html: str | None) -> Fragment | None:
    """A shown row's update: its new HTML, swapped over the old row."""
    if html is None:
        return None
    return Fragment(html, f"outerHTML:#run-{run.friendly_id}", table=True)


def _psycopg_params() -> dict[str, Any]:
    params = connection.settings_dict
    return {
        "dbname": params["NAME"],
        "user": params.get("USER") or None,
        "password": params.get("PASSWORD") or None,
        "host": params.get("HOST") or None,
        "port": params.get("PORT") or None,
    }
