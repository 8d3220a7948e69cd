"""runs.batch_streams: the service behind the two-phase batch API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from runs.batch_streams import add_batch_items, batch_run_ids, create_batch
from runs.engine import scheduler
from runs.engine.batches import abort_unsealed_batches
from runs.errors import InvalidInput, Unprocessable
from runs.models import Batch, BatchStatus, Run
from runs.statuses import RunStatus
from runs.triggering import BatchItem, TriggerOptions, trigger

pytestmark = pytest.mark.django_db


def items(*indexes, task="a", **options):
    return [
        (i, BatchItem(task, {"i": i}, options=TriggerOptions(**options)))
        for i in indexes
    ]


def test_items_arrive_in_any_order_and_seal_once_complete(dev, deploy):
    deploy(dev, "a")
    batch, cached = create_batch(dev, 3)
    assert not cached and not batch.sealed and batch.status == BatchStatus.PENDING
    assert add_batch_items(batch, items(2)).sealed is False
    result = add_batch_items(batch, items(0, 2, 1))
    assert (result.accepted, result.deduplicated, result.sealed) == (2, 1, True)
    batch.refresh_from_db()
    assert batch.sealed and batch.processing_completed_at is not None
    assert len(batch_run_ids(batch)) == 3
    assert [
        r.batch_index for r in Run.objects.filter(batch=batch).order_by("batch_index")
    ] == [0, 1, 2]


def test_a_failing_item_rolls_back_its_whole_call(dev, deploy):
    deploy(dev, "a")
    batch, _ = create_batch(dev, 2)
    with pytest.raises(Unprocessable):
        add_batch_items(batch, [*items(0), *items(1, tags=[str(i) for i in range(11)])])
    assert Run.objects.count() == 0
    with pytest.raises(InvalidInput):
        add_batch_items(batch, items(2))


def test_items_inherit_the_batch_parent(dev, deploy):
    deploy(dev, "a")
    parent, _ = trigger(dev, "a", {})
    batch, _ = create_batch(
        dev, 1, parent_run_id=parent.friendly_id, resume_parent_on_completion=True
    )
    add_batch_items(batch, items(0))
    child = Run.objects.get(batch=batch)
    assert child.parent_id == parent.pk and child.resume_parent_on_completion
    with pytest.raises(Unprocessable):
        create_batch(dev, 1, parent_run_id="run_missing")


def test_aborted_batches_take_no_items(dev, deploy):
    deploy(dev, "a")
    batch, _ = create_batch(dev, 1)
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.ABORTED)
    with pytest.raises(Unprocessable, match="not in PENDING status"):
        add_batch_items(batch, items(0))


def test_an_expired_batch_idempotency_key_opens_a_new_batch(dev):
    first, _ = create_batch(dev, 1, idempotency_key="k")
    Batch.objects.filter(pk=first.pk).update(
        idempotency_key_expires_at="2000-01-01T00:00:00Z"
    )
    second, cached = create_batch(dev, 1, idempotency_key="k")
    assert not cached and second.pk != first.pk


def test_a_batch_not_sealed_within_the_seal_timeout_is_aborted(dev, deploy, settings):
    settings.RUNWATCH_BATCH_SEAL_TIMEOUT_SECONDS = 1800
    deploy(dev, "a")
    stale, _ = create_batch(dev, 3)
    add_batch_items(stale, items(0))
    fresh, _ = create_batch(dev, 2)
    sealed_old, _ = create_batch(dev, 1)
    add_batch_items(sealed_old, items(0))
    long_ago = timezone.now() - timedelta(seconds=1801)
    Batch.objects.filter(pk__in=[stale.pk, sealed_old.pk]).update(created_at=long_ago)
    Batch.objects.filter(pk=fresh.pk).update(
        created_at=timezone.now() - timedelta(seconds=1790)
    )

    scheduler.tick()

    stale.refresh_from_db()
    assert stale.status == BatchStatus.ABORTED and not stale.sealed
    assert stale.completed_at is not None
    assert Batch.objects.get(pk=fresh.pk).status == BatchStatus.PENDING
    assert Batch.objects.get(pk=sealed_old.pk).status == BatchStatus.PENDING
    # the item that did arrive is a run already in flight: it is left alone
    assert Run.objects.get(batch=stale).status == RunStatus.QUEUED
    with pytest.raises(Unprocessable, match="current: ABORTED"):
        add_batch_items(stale, items(1, 2))
    assert abort_unsealed_batches() == 0
