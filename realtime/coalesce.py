"""Per-connection coalescing of outgoing fragments.

Every change the feed offers a connection lands in a dict keyed by what it updates
(a run's row, a batch's progress, …): a newer fragment replaces the pending one, so
the latest state wins and a burst of changes on one run costs one fragment. At most
one message leaves per `window` seconds (the first one of a quiet period at once), so
a run is updated at most once per window. The buffer is bounded: past `max_pending`
distinct keys it is dropped and the connection is told to take a fresh snapshot
instead. Clients that acknowledge messages get flow control: at most `max_in_flight`
unacknowledged messages, so a slow reader receives fewer, fresher messages instead
of an ever-growing backlog. Pure and synchronous: the hub drives it with a clock.
"""

from __future__ import annotations

import math
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
    placement when a newer version of the same key replaces it before it is sent, so
    an inserted row updated within the window is still inserted, with the newer HTML.
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


class Coalescer:
    def __init__(
        self,
        *,
        window: float = WINDOW_SECONDS,
        max_pending: int = MAX_PENDING,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.window = window
        self.max_pending = max_pending
        self.max_in_flight = max_in_flight
        self._pending: dict[Hashable, Fragment] = {}
        self._last_flush = -math.inf
        self.overflowed = False
        self.sent = 0  # messages taken so far
        self.sequence = 0  # the last message's sequence number (what the client acks)
        self._unacked: deque[int] = deque(maxlen=4 * max_in_flight)  # their sequences
        self.acked: int | None = None  # None until the client acknowledges once
        self.dropped = 0  # fragments discarded by overflows

    def __len__(self) -> int:
        return len(self._pending)

    def offer(self, key: Hashable, fragment: Fragment) -> None:
        previous = self._pending.get(key)
        if previous is not None and previous.insert and not fragment.insert:
            fragment = Fragment(fragment.html, previous.placement, previous.table, True)
        self._pending[key] = fragment
        if len(self._pending) > self.max_pending:
            self.dropped += len(self._pending)
            self._pending.clear()
            self.overflowed = True

    def discard(self, key: Hashable) -> None:
        self._pending.pop(key, None)

    def reset(self, fragments: Iterable[tuple[Hashable, Fragment]]) -> None:
        """Replace everything pending (e.g. with a fresh snapshot)."""
        self._pending.clear()
        self.overflowed = False
        for key, fragment in fragments:
            self.offer(key, fragment)

    def ack(self, sequence: int) -> None:
        if 0 <= sequence <= self.sequence:
            self.acked = max(self.acked or 0, sequence)
            while self._unacked and self._unacked[0] <= self.acked:
                self._unacked.popleft()

    @property
    def wants_ack(self) -> bool:
        """Whether the message just taken should ask for an acknowledgement."""
        return self.sent % ACK_EVERY == 0

    @property
    def in_flight(self) -> int:
        return 0 if self.acked is None else len(self._unacked)

    def due_at(self) -> float | None:
        """When the next message may leave (monotonic seconds), or None: nothing to
        send, or waiting for acknowledgements."""
        if not self._pending or self.overflowed:
            return None
        if self.in_flight >= self.max_in_flight:
            return None
        return self._last_flush + self.window

    def take(self, now: float, sequence: int | None = None) -> list[Fragment] | None:
        """The pending fragments, in first-offered order, if a message may leave now.
        `sequence` numbers the message (increasing; the hub numbers its flush ticks so
        that connections flushed together can share one frame); by default the count
        of messages taken."""
        due = self.due_at()
        if due is None or due > now:
            return None
        fragments = list(self._pending.values())
        self._pending.clear()
        self._last_flush = now
        self.sent += 1
        self.sequence = self.sent if sequence is None else sequence
        self._unacked.append(self.sequence)
        return fragments
