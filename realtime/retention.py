"""Keeping the live-signal table bounded.

A LiveSignal row only tells the server processes' relays that a batch, bulk action,
deployment or environment changed; once every relay has read it (within seconds) it
carries nothing, and bulk actions write one per chunk. Rows older than
RUNWATCH_LIVE_SIGNAL_RETENTION_SECONDS are deleted, a chunk at a time, by the worker's
housekeeping (next to runs.engine.retention). A relay that was away longer than that
starts over from a snapshot anyway (realtime.feed skips ahead past a long backlog).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from realtime.models import LiveSignal

CHUNK = 5000


def prune_live_signals(max_chunks: int = 20) -> int:
    """Delete signals older than the retention in short transactions, oldest first
    (walking the primary key: ids follow creation); returns how many."""
    cutoff = timezone.now() - timedelta(
        seconds=settings.RUNWATCH_LIVE_SIGNAL_RETENTION_SECONDS
    )
    old = LiveSignal.objects.filter(created_at__lt=cutoff).order_by("pk")
    deleted = 0
    for _ in range(max_chunks):
        ids = list(old.values_list("pk", flat=True)[:CHUNK])
        if ids:
            deleted += LiveSignal.objects.filter(pk__in=ids).delete()[0]
        if len(ids) < CHUNK:
            break
    return deleted
