"""Connections, and the groups of connections that show the same page in the same
state, with the indexes the hub finds them by.

A thousand tabs on the runs list are one group: the relay applies a change once to
the group's watch and offers it once to the group's outbox; each connection only
reads the outbox from its own position (realtime.coalesce). A connection joins a
group when its snapshot shows what the group's watch shows (equal `signature()`);
otherwise it starts a group of its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from typing import Protocol

from realtime.coalesce import Outbox, Reader
from realtime.watches import RunPageWatch, RunsListWatch, Watch


class Sender(Protocol):
    async def send_message(self, message: dict) -> None:
        """Send an ASGI `websocket.send` message as is (shared by many connections:
        it must not be modified)."""


class Connection:
    def __init__(self, sender: Sender, watch: Watch) -> None:
        self.sender = sender
        self.watch = watch  # the page it asked for (its group's watch holds the state)
        self.group: Group | None = None  # None until its snapshot is installed
        self.reader = Reader()
        self.needs_snapshot = True
        self.generation = (
            0  # bumped when the watch changes; stale snapshots are dropped
        )
        self.nonce = 0  # the page's count of watch changes, echoed in every message


class Group:
    def __init__(self, watch: Watch) -> None:
        self.watch = watch
        self.outbox = Outbox()
        self.members: set[Connection] = set()
        self.flushed = 0  # the outbox version of the last flush pass
        self.lagging = False  # a member held back by flow control has news
        self.joined = False  # a member joined with a snapshot not yet sent

    @property
    def needs_flush(self) -> bool:
        return self.outbox.version != self.flushed or self.lagging or self.joined


class Groups:
    """Every group of a hub, by what it shows."""

    def __init__(self) -> None:
        self.all: set[Group] = set()
        self.by_key: defaultdict[Hashable, set[Group]] = defaultdict(set)
        self.rows: defaultdict[int, set[Group]] = defaultdict(set)  # run → lists
        # environment → filter key → runs lists (any position)
        self.lists: defaultdict[int, defaultdict[str, set[Group]]] = defaultdict(
            lambda: defaultdict(set)
        )
        self.run_pages: defaultdict[int, set[Group]] = defaultdict(set)
        self.by_env: defaultdict[int, set[Group]] = defaultdict(set)
        self.signals: defaultdict[Hashable, set[Group]] = defaultdict(set)

    def find(self, watch: Watch) -> Group | None:
        """A group whose watch shows what `watch` (with its snapshot installed) shows."""
        signature = watch.signature()
        for group in self.by_key.get(watch.snapshot_key(), ()):
            if group.watch.signature() == signature:
                return group
        return None

    def add(self, group: Group) -> None:
        watch = group.watch
        self.all.add(group)
        self.by_key[watch.snapshot_key()].add(group)
        self.by_env[watch.environment_id].add(group)
        for key in watch.signal_keys():
            self.signals[key].add(group)
        if isinstance(watch, RunPageWatch):
            self.run_pages[watch.run_id].add(group)
        if isinstance(watch, RunsListWatch):
            self.lists[watch.environment_id][watch.key].add(group)
            for pk in watch.state.shown:
                self.rows[pk].add(group)

    def remove(self, group: Group) -> None:
        watch = group.watch
        self.all.discard(group)
        _discard(self.by_key, watch.snapshot_key(), group)
        _discard(self.by_env, watch.environment_id, group)
        for key in watch.signal_keys():
            _discard(self.signals, key, group)
        if isinstance(watch, RunPageWatch):
            _discard(self.run_pages, watch.run_id, group)
        if isinstance(watch, RunsListWatch):
            by_filter = self.lists.get(watch.environment_id)
            if by_filter is not None:
                _discard(by_filter, watch.key, group)
                if not by_filter:
                    del self.lists[watch.environment_id]
            for pk in watch.state.shown:
                _discard(self.rows, pk, group)


def _discard(index: dict, key: Hashable, group: Group) -> None:
    groups = index.get(key)
    if groups is not None:
        groups.discard(group)
        if not groups:
            del index[key]
