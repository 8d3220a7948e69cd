"""Streamed batches (the SDK's two-phase batch trigger, reference §1.5.1).

`create_batch` opens a batch expecting `run_count` items; `add_batch_items` turns
items into runs as they arrive, deduplicated by their index (a retried stream is
safe), and seals the batch once every index has arrived. Each call is all or
nothing: an invalid item fails the call and none of its items become runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from realtime.publish import object_changed
from runs.errors import InvalidInput, Unprocessable
from runs.models import Batch, BatchStatus, Environment, Run
from runs.triggering import BatchItem, batch_trigger

IDEMPOTENCY_KEY_TTL = timedelta(days=30)


def create_batch(
    environment: Environment,
    run_count: int,
    *,
    idempotency_key: str | None = None,
    parent_run_id: str | None = None,
    resume_parent_on_completion: bool = False,
) -> tuple[Batch, bool]:
    """Open a batch for `run_count` items. Returns (batch, is_cached): a live batch
    idempotency key returns the batch that holds it."""
    limit = settings.RUNWATCH_BATCH_MAX_ITEMS
    if run_count < 1:
        raise InvalidInput("Batch runCount must be at least 1")
    if run_count > limit:
        raise InvalidInput(
            f"Batch runCount of {run_count} exceeds maximum allowed of {limit}."
        )
    now = timezone.now()
    with transaction.atomic():
        if idempotency_key:
            cached = (
                Batch.objects.select_for_update()
                .filter(environment=environment, idempotency_key=idempotency_key)
                .first()
            )
            if cached is not None:
                expires = cached.idempotency_key_expires_at
                if expires is None or expires > now:
                    return cached, True
                Batch.objects.filter(pk=cached.pk).update(idempotency_key=None)
        parent = None
        if parent_run_id:
            parent = Run.objects.filter(
                environment=environment, friendly_id=parent_run_id
            ).first()
            if parent is None:
                raise Unprocessable(
                    f"Parent run {parent_run_id} was not found", field="parentRunId"
                )
        batch = Batch.objects.create(
            environment=environment,
            run_count=run_count,
            sealed=False,
            status=BatchStatus.PENDING,
            idempotency_key=idempotency_key or None,
            idempotency_key_expires_at=now + IDEMPOTENCY_KEY_TTL
            if idempotency_key
            else None,
            parent=parent,
            resume_parent_on_completion=resume_parent_on_completion,
        )
        object_changed("batch", batch.pk, environment.pk)
    return batch, False


@dataclass(frozen=True)
class ItemsAdded:
    accepted: int
    deduplicated: int
    sealed: bool
    received: int  # distinct indexes so far
    expected: int


def add_batch_items(batch: Batch, items: list[tuple[int, BatchItem]]) -> ItemsAdded:
    """Trigger the items (index, item) not seen before; seal when all have arrived."""
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch.pk)
        if batch.sealed:
            return ItemsAdded(0, 0, True, batch.run_count, batch.run_count)
        if batch.status != BatchStatus.PENDING:
            raise Unprocessable(
                f"Batch {batch.friendly_id} is not in PENDING status (current: {batch.status})"
            )
        for index, _ in items:
            if index >= batch.run_count:
                raise InvalidInput(
                    f"Item index {index} is out of range: the batch expects "
                    f"{batch.run_count} items (indexes 0 to {batch.run_count - 1})"
                )
        seen = _received_indexes(batch)
        fresh: list[BatchItem] = []
        for index, item in items:
            if index in seen:
                continue
            seen.add(index)
            fresh.append(_inherit(batch, index, item))
        if fresh:
            batch_trigger(batch.environment, fresh, batch=batch, seal=False)
        sealed = len(seen) >= batch.run_count
        if sealed:
            Batch.objects.filter(pk=batch.pk).update(
                sealed=True, processing_completed_at=timezone.now()
            )
        if fresh or sealed:
            object_changed("batch", batch.pk, batch.environment_id)
    return ItemsAdded(
        accepted=len(fresh),
        deduplicated=len(items) - len(fresh),
        sealed=sealed,
        received=len(seen),
        expected=batch.run_count,
    )


def _received_indexes(batch: Batch) -> set[int]:
    indexes = set(
        Run.objects.filter(batch=batch, batch_index__isnull=False).values_list(
            "batch_index", flat=True
        )
    )
    return indexes | {int(i) for i in batch.cached_items}


def _inherit(batch: Batch, index: int, item: BatchItem) -> BatchItem:
    options = replace(
        item.options,
        batch_index=index,
        parent_run_id=item.options.parent_run_id
        or (batch.parent.friendly_id if batch.parent_id else None),
        resume_parent_on_completion=item.options.resume_parent_on_completion
        or batch.resume_parent_on_completion,
    )
    return replace(item, options=options)


def batch_run_ids(batch: Batch) -> list[str]:
    """Friendly ids of the batch's runs in item order (cached items included)."""
    by_index = dict(
        Run.objects.filter(batch=batch)
        .order_by("batch_index", "id")
        .values_list("batch_index", "friendly_id")
    )
    for index, friendly_id in batch.cached_items.items():
        by_index.setdefault(int(index), friendly_id)
    return [by_index[i] for i in sorted(by_index, key=lambda i: (i is None, i or 0))]
