"""The single publishing function for run changes.

Producers never call the channel layer directly: `runs.lifecycle` and the other
services record a RunEvent and call `run_changed` on commit. This module is a leaf:
it imports only Channels, so `runs` can depend on it without a cycle.
"""

from __future__ import annotations

import logging
from typing import TypedDict

logger = logging.getLogger("runwatch.realtime")


class RunChanged(TypedDict):
    run_id: int
    environment_id: int
    kind: str  # status / metadata / log / tags / created
    event_id: int | None


_listeners: list = []


def subscribe(listener) -> None:
    """Register an in-process listener (the realtime fan-out installs one on start)."""
    if listener not in _listeners:
        _listeners.append(listener)


def unsubscribe(listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def run_changed(event: RunChanged) -> None:
    """Announce one committed run change. Must be called after commit (on_commit)."""
    for listener in list(_listeners):
        try:
            listener(event)
        except Exception:  # a broken live feed must never fail a run transition
            logger.exception("run change listener failed")


SIGNAL_KINDS = frozenset({"batch", "bulk", "deployment", "environment"})


def object_changed(kind: str, object_id: int, environment_id: int) -> None:
    """Record that a batch, bulk action, deployment or environment changed, for every
    server's live feed. Call it inside the transaction that made the change: the
    signal row commits (or rolls back) with it."""
    from django.db import transaction

    from realtime.models import LiveSignal
    from runs.lifecycle import EVENTS_CHANNEL, notify_on_commit

    if kind not in SIGNAL_KINDS:
        raise ValueError(f"unknown live signal kind {kind!r}")
    with transaction.atomic():
        LiveSignal.objects.create(
            kind=kind, object_id=object_id, environment_id=environment_id
        )
        notify_on_commit(EVENTS_CHANNEL)
