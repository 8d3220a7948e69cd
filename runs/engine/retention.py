"""Keeping the run-event table bounded.

Every metadata flush writes a `metadata` RunEvent (the realtime relay reads events by
id to learn what changed), so a long run reporting progress four times a second adds
~15,000 rows an hour that carry nothing once relayed: the run row holds the metadata.
They are deleted after RUNWATCH_METADATA_EVENT_RETENTION_SECONDS. Status changes and
log lines are the run's history and stay.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from runs.models import RunEvent, RunEventKind

CHUNK = 5000


def prune_metadata_events(max_chunks: int = 20) -> int:
    """Delete relayed metadata events older than the retention; returns how many."""
    cutoff = timezone.now() - timedelta(
        seconds=settings.RUNWATCH_METADATA_EVENT_RETENTION_SECONDS
    )
    old = RunEvent.objects.filter(kind=RunEventKind.METADATA, created_at__lt=cutoff)
    return delete_in_chunks(old, max_chunks)


def delete_in_chunks(rows: QuerySet, max_chunks: int) -> int:
    """Delete `rows` CHUNK at a time, each chunk its own short transaction, for at
    most `max_chunks` chunks (the rest waits for the next pass); returns how many."""
    deleted = 0
    for _ in range(max_chunks):
        ids = list(rows.values_list("pk", flat=True)[:CHUNK])
        if ids:
            deleted += rows.model.objects.filter(pk__in=ids).delete()[0]
        if len(ids) < CHUNK:
            break
    return deleted
