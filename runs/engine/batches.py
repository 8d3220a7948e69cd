"""Batch completion: a sealed batch is COMPLETED once none of its runs is unfinished,
however its runs ended (executed, canceled, expired, recovered as crashed). A streamed
batch whose items stop arriving is ABORTED after the seal timeout."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from realtime.publish import object_changed
from runs.models import Batch, BatchStatus, Run
from runs.statuses import UNFINISHED_SORTED

CHUNK = 500


def settle_batches() -> int:
    """Mark finished batches COMPLETED (one sweep over PENDING batches; each check is
    one probe of the `run_unfinished_batch` partial index). Returns how many settled."""
    unfinished = Run.objects.filter(batch=OuterRef("pk"), status__in=UNFINISHED_SORTED)
    done = list(
        Batch.objects.filter(status=BatchStatus.PENDING, sealed=True)
        .exclude(Exists(unfinished))
        .order_by("id")
        .values_list("pk", "environment_id")[:CHUNK]
    )
    if not done:
        return 0
    now = timezone.now()
    with transaction.atomic():
        settled = Batch.objects.filter(
            pk__in=[pk for pk, _ in done], status=BatchStatus.PENDING
        ).update(status=BatchStatus.COMPLETED, completed_at=now, updated_at=now)
        for pk, environment_id in done:
            object_changed("batch", pk, environment_id)
    return settled


def abort_unsealed_batches() -> int:
    """ABORT streamed batches (`POST /api/v3/batches`) not sealed within
    `RUNWATCH_BATCH_SEAL_TIMEOUT_SECONDS` of their creation: they take no more items.
    Runs made from items that did arrive are already in flight and keep going."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.RUNWATCH_BATCH_SEAL_TIMEOUT_SECONDS)
    stale = Batch.objects.filter(
        status=BatchStatus.PENDING, sealed=False, created_at__lt=cutoff
    )
    if not stale.exists():
        return 0
    with transaction.atomic():
        rows = list(
            stale.select_for_update(skip_locked=True)
            .order_by("id")
            .values_list("pk", "environment_id")[:CHUNK]
        )
        aborted = Batch.objects.filter(
            pk__in=[pk for pk, _ in rows], status=BatchStatus.PENDING, sealed=False
        ).update(
            status=BatchStatus.ABORTED,
            completed_at=now,
            updated_at=now,
        )
        for pk, environment_id in rows:
            object_changed("batch", pk, environment_id)
    return aborted
