"""Batch completion: a sealed batch is COMPLETED once none of its runs is unfinished,
however its runs ended (executed, canceled, expired, recovered as crashed)."""

from __future__ import annotations

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
