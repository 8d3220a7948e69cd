"""Coalescing of outgoing fragments, shared by the connections that show the same thing.

Connections that show the same page in the same state (a thousand tabs on the runs
list) form a group with one `Outbox` (realtime.hub): a change is offered once to the
group, not once per connection. The outbox keeps the latest fragment per key (a run's
row, a batch's progress, …): a newer one replaces the older, so the latest state wins
and a burst of changes on one run costs one fragment. Each connection reads the outbox
from where it stopped (`Reader.cursor`): connections in step share one message per
flush tick, and a connection held back by flow control later gets one message with
the latest state of everything that changed meanwhile.

The hub flushes at most once per window (shared ticks), so a run is updated at most
once per window per connection. Memory is bounded: an outbox keeps only what some
member has not received yet, and past `max_pending` keys the members furthest behind
are given a fresh snapshot instead. Clients that acknowledge messages get flow
control: at most `max_in_flight` unacknowledged messages, so a slow reader receives
fewer, fresher messages instead of an ever-growing backlog. Pure and synchronous.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

WINDOW_SECONDS = 0.1
MAX_PENDING = 400
MAX_IN_FLIGHT = 16
ACK_EVERY = 8  # the client is asked to acknowledge every 8th message (cumulative)


@dataclass(frozen=True, slots=True)
class Fragment:
    """HTML that htmx swaps out-of-band: by its own id, or at `placement` (an
    hx-swap-oob value such as "beforeend:#runs-body" or "outerHTML:#run-x").

    Table rows cannot stand alone at the top of a message (the HTML parser drops or
    re-parents them), so `table` fragments travel inside a `<tbody>` wrapper that
    carries the placement, and messages put every table fragment before the rest;
    static/js/app.js unwraps a wrapper swapped with outerHTML. An `insert` keeps its
    placement for a reader that has not received it when a newer version of the same
    key replaces it: an inserted row updated before it reaches a tab is still
    inserted there, with the newer HTML.
    """

    html: str
    placement: str | None = None
    table: bool = False
    insert: bool = False

    def render(self) -> str:
        if not self.table or self.placement is None:
            return self.html
        return f'<tbody hx-swap-oob="{self.placement}" data-live-unwrap>{self.html}</tbody>'


def assemble(fragments: Iterable[Fragment]) -> str:
    """One message: table fragments first (in order), then the others."""
    ordered = sorted(fragments, key=lambda f: not f.table)
    return "".join(f.render() for f in ordered)


@dataclass(slots=True)
class _Entry:
    fragment: Fragment  # the latest one offered under this key
    changed: int  # the outbox version of that offer
    inserted: int = 0  # the version of the key's insertion (0: none)
    placement: str | None = None  # where the insertion goes

    def for_reader(self, cursor: int) -> Fragment:
        """What a reader that has received everything up to `cursor` needs."""
        fragment = self.fragment
        if self.inserted > cursor and not fragment.insert:
            return Fragment(fragment.html, self.placement, fragment.table, True)
        return fragment


class Outbox:
    """The latest fragment per key of one group, readable from any version."""

    def __init__(self, *, max_pending: int = MAX_PENDING) -> None:
        self.max_pending = max_pending
        self.version = 0  # bumped by every offer
        # insertion order is first-offered order: an inserted row's placement may
        # name a row inserted before it, which must come first in a message
        self._entries: dict[Hashable, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def offer(self, key: Hashable, fragment: Fragment) -> None:
        self.version += 1
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(fragment, self.version)
        else:
            entry.fragment, entry.changed = fragment, self.version
        if fragment.insert:
            entry.inserted, entry.placement = self.version, fragment.placement

    def since(self, cursor: int) -> list[Fragment]:
        """What a reader at `cursor` has not received: the latest state per key, in
        first-offered order."""
        return [
            e.for_reader(cursor) for e in self._entries.values() if e.changed > cursor
        ]

    def prune(self, cursor: int) -> None:
        """Forget what every reader has received (all are at `cursor` or later)."""
        if any(e.changed <= cursor for e in self._entries.values()):
            self._entries = {
                k: e for k, e in self._entries.items() if e.changed > cursor
            }

    @property
    def overflowing(self) -> bool:
        return len(self._entries) > self.max_pending


class Reader:
    """One connection's place in its group's outbox, and its flow control."""

    def __init__(self, *, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.max_in_flight = max_in_flight
        self.cursor = 0  # the outbox version received so far
        self.private: list[Fragment] | None = None  # a snapshot, sent before the rest
        self.sent = 0  # messages taken so far
        self.sequence = 0  # the last message's sequence number (what the client acks)
        self._unacked: deque[int] = deque(maxlen=4 * max_in_flight)  # their sequences
        self.acked: int | None = None  # None until the client acknowledges once

    def start(self, cursor: int, snapshot: list[Fragment]) -> None:
        """Read a group's outbox from `cursor` on, after the page's snapshot."""
        self.cursor, self.private = cursor, snapshot

    def has_news(self, outbox: Outbox) -> bool:
        return self.private is not None or self.cursor < outbox.version

    @property
    def blocked(self) -> bool:
        """Waiting for acknowledgements: nothing more may leave meanwhile."""
        return self.acked is not None and len(self._unacked) >= self.max_in_flight

    @property
    def asks_ack(self) -> bool:
        """Whether the next message should ask for an acknowledgement."""
        return (self.sent + 1) % ACK_EVERY == 0

    def took(self, version: int, sequence: int) -> None:
        """A message with everything up to `version` left, numbered `sequence`
        (the hub's flush tick: increasing, shared by the connections of a tick)."""
        self.cursor, self.private = version, None
        self.sent += 1
        self.sequence = sequence
        self._unacked.append(sequence)

    def ack(self, sequence: int) -> None:
        if 0 <= sequence <= self.sequence:
            self.acked = max(self.acked or 0, sequence)
            while self._unacked and self._unacked[0] <= self.acked:
                self._unacked.popleft()

    @property
    def in_flight(self) -> int:
        return 0 if self.acked is None else len(self._unacked)
