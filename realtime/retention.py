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
from runs.engine.retention import delete_in_chunks


def prune_live_signals(max_chunks: int = 20) -> int:
    """Delete signals older than the retention, oldest first (walking the primary key:
    ids follow creation); returns how many."""
    cutoff = timezone.now() - timedelta(
        seconds=settings.RUNWATCH_LIVE_SIGNAL_RETENTION_SECONDS
    )
    old = LiveSignal.objects.filter(created_at__lt=cutoff).order_by("pk")
    return delete_in_chunks(old, max_chunks)
