from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from runs.errors import InvalidInput, TooLarge, Unprocessable
from runs.models import Run, RunEvent, RunTag
from runs.statuses import RunStatus
from runs.triggering import (
    BatchItem,
    ReplayOverrides,
    TriggerOptions,
    batch_trigger,
    replay,
    trigger,
)
from tests.concurrency import run_concurrently

pytestmark = pytest.mark.django_db


def test_trigger_queues_a_run_of_a_deployed_task(dev, deploy):
    deploy(dev, "hello-world")
    run, cached = trigger(dev, "hello-world", {"name": "Ada"})
    assert not cached
    assert run.friendly_id.startswith("run_") and len(run.friendly_id) >= 24
    assert run.status == RunStatus.QUEUED
    assert json.loads(run.payload) == {"name": "Ada"}
    assert run.queue == "task/hello-world"
    assert run.queued_at is not None
    assert RunEvent.objects.filter(run=run, status=RunStatus.QUEUED).count() == 1


def test_numbers_are_sequential_per_environment(dev, prod, deploy):
    deploy(dev, "a")
    deploy(prod, "a")
    numbers = [trigger(dev, "a", {})[0].number for _ in range(3)]
    assert numbers == [1, 2, 3]
    assert trigger(prod, "a", {})[0].number == 1


def test_trigger_without_deployment_waits_for_a_version(dev, deploy):
    run, _ = trigger(dev, "not-yet", {})
    assert run.status == RunStatus.PENDING_VERSION
    deploy(dev, "not-yet")
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED


def test_delay_makes_run_delayed(dev, deploy):
    deploy(dev, "a")
    run, _ = trigger(dev, "a", {}, TriggerOptions(delay="1h"))
    assert run.status == RunStatus.DELAYED
    assert (
        timedelta(minutes=59) < run.delay_until - timezone.now() <= timedelta(hours=1)
    )


def test_past_or_garbage_delay_is_ignored_like_trigger_dev(dev, deploy):
    deploy(dev, "a")
    assert (
        trigger(dev, "a", {}, TriggerOptions(delay="yesterday-ish"))[0].status
        == RunStatus.QUEUED
    )
    assert (
        trigger(dev, "a", {}, TriggerOptions(delay="2001-01-01T00:00:00Z"))[0].status
        == RunStatus.QUEUED
    )


def test_dev_runs_get_a_ten_minute_ttl_by_default(dev, prod, deploy):
    deploy(dev, "a")
    deploy(prod, "a")
    assert trigger(dev, "a", {})[0].ttl == "10m"
    assert trigger(prod, "a", {})[0].ttl is None
    assert trigger(prod, "a", {}, TriggerOptions(ttl=5400))[0].ttl == "1h30m"


def test_negative_ttl_is_rejected(dev, deploy):
    deploy(dev, "a")
    with pytest.raises(InvalidInput):
        trigger(dev, "a", {}, TriggerOptions(ttl=-1))


def test_idempotency_key_returns_the_existing_run(dev, deploy):
    deploy(dev, "a")
    first, cached_first = trigger(
        dev, "a", {}, TriggerOptions(idempotency_key="order-1")
    )
    second, cached_second = trigger(
        dev, "a", {"other": True}, TriggerOptions(idempotency_key="order-1")
    )
    assert (cached_first, cached_second) == (False, True)
    assert second.pk == first.pk
    assert Run.objects.count() == 1


def test_idempotency_key_of_a_failed_run_is_released(dev, deploy):
    deploy(dev, "a")
    first, _ = trigger(dev, "a", {}, TriggerOptions(idempotency_key="k"))
    Run.objects.filter(pk=first.pk).update(status=RunStatus.FAILED)
    second, cached = trigger(dev, "a", {}, TriggerOptions(idempotency_key="k"))
    assert not cached and second.pk != first.pk


def test_expired_idempotency_key_is_released(dev, deploy):
    deploy(dev, "a")
    first, _ = trigger(
        dev, "a", {}, TriggerOptions(idempotency_key="k", idempotency_key_ttl="1s")
    )
    Run.objects.filter(pk=first.pk).update(
        idempotency_key_expires_at=timezone.now() - timedelta(seconds=1)
    )
    second, cached = trigger(dev, "a", {}, TriggerOptions(idempotency_key="k"))
    assert not cached and second.pk != first.pk


def test_tags_are_normalised_and_indexed(dev, deploy):
    deploy(dev, "a")
    run, _ = trigger(
        dev, "a", {}, TriggerOptions(tags=["user_2", " ", "org:1", "user_2"])
    )
    assert run.tags == ["org:1", "user_2"]
    assert set(RunTag.objects.filter(run=run).values_list("tag", flat=True)) == {
        "org:1",
        "user_2",
    }


def test_more_than_ten_tags_is_unprocessable(dev, deploy):
    deploy(dev, "a")
    with pytest.raises(
        Unprocessable, match=r"Runs can only have 10 tags, you.re trying to set 11\."
    ):
        trigger(dev, "a", {}, TriggerOptions(tags=[f"t{i}" for i in range(11)]))
    assert not Run.objects.exists()


def test_tag_longer_than_128_chars_is_rejected(dev, deploy):
    deploy(dev, "a")
    with pytest.raises(InvalidInput, match="128"):
        trigger(dev, "a", {}, TriggerOptions(tags=["x" * 129]))


def test_metadata_over_256_kib_is_too_large(dev, deploy):
    deploy(dev, "a")
    with pytest.raises(TooLarge, match="262144"):
        trigger(dev, "a", {}, TriggerOptions(metadata={"blob": "x" * 262_144}))
    assert not Run.objects.exists()


def test_child_run_links_parent_root_and_depth(dev, deploy):
    deploy(dev, "a")
    parent, _ = trigger(dev, "a", {})
    child, _ = trigger(dev, "a", {}, TriggerOptions(parent_run_id=parent.friendly_id))
    grandchild, _ = trigger(
        dev, "a", {}, TriggerOptions(parent_run_id=child.friendly_id)
    )
    assert (child.parent_id, child.root_id, child.depth) == (parent.pk, parent.pk, 1)
    assert (grandchild.parent_id, grandchild.root_id, grandchild.depth) == (
        child.pk,
        parent.pk,
        2,
    )


def test_batch_trigger_is_all_or_nothing(dev, deploy):
    deploy(dev, "a")
    items = [BatchItem("a", {"i": i}) for i in range(3)] + [
        BatchItem("a", {}, options=TriggerOptions(tags=["x" * 200]))
    ]
    with pytest.raises(InvalidInput):
        batch_trigger(dev, items)
    assert not Run.objects.exists()


def test_batch_trigger_creates_runs_in_one_batch(dev, deploy):
    deploy(dev, "a")
    batch, runs, cached = batch_trigger(
        dev, [BatchItem("a", {"i": i}) for i in range(20)]
    )
    assert not cached and len(runs) == 20
    assert batch.runs.count() == 20
    assert sorted(r.number for r in runs) == list(range(1, 21))
    assert [r.batch_index for r in runs] == list(range(20))


def test_batch_size_limit(dev, deploy, settings):
    settings.RUNWATCH_BATCH_MAX_ITEMS = 5
    deploy(dev, "a")
    with pytest.raises(InvalidInput, match="Maximum allowed batch size is 5"):
        batch_trigger(dev, [BatchItem("a", {}) for _ in range(6)])


def test_replay_copies_payload_tags_and_seed_metadata(dev, deploy):
    deploy(dev, "a")
    run, _ = trigger(
        dev,
        "a",
        {"x": 1},
        TriggerOptions(tags=["t"], metadata={"seed": 1}, machine="large-1x"),
    )
    Run.objects.filter(pk=run.pk).update(
        metadata={"changed": True}, status=RunStatus.FAILED
    )
    run.refresh_from_db()
    new = replay(run)
    assert new.pk != run.pk and new.replayed_from_id == run.pk
    assert (new.payload, new.tags, new.metadata, new.machine) == (
        run.payload,
        ["t"],
        {"seed": 1},
        "large-1x",
    )


def test_replay_with_edited_payload(dev, deploy):
    deploy(dev, "a")
    run, _ = trigger(dev, "a", {"x": 1})
    new = replay(run, ReplayOverrides(payload={"x": 2}))
    assert json.loads(new.payload) == {"x": 2}


def test_a_cached_trigger_does_not_use_up_a_run_number(dev, deploy):
    deploy(dev, "a")
    first, _ = trigger(dev, "a", {}, TriggerOptions(idempotency_key="k"))
    for _ in range(3):
        assert trigger(dev, "a", {}, TriggerOptions(idempotency_key="k"))[1]
    assert trigger(dev, "a", {})[0].number == first.number + 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_triggers_with_one_idempotency_key_create_one_run(dev, deploy):
    deploy(dev, "a")
    barrier = threading.Barrier(8)
    answers: list[tuple[str, bool]] = []

    def trigger_once(i: int) -> None:
        Run.objects.exists()  # connect before the race
        barrier.wait()
        run, cached = trigger(
            dev, "a", {"i": i}, TriggerOptions(idempotency_key="order-42")
        )
        answers.append((run.friendly_id, cached))

    assert run_concurrently(trigger_once, 8) == []
    assert Run.objects.filter(environment=dev).count() == 1
    assert {run_id for run_id, _ in answers} == {Run.objects.get().friendly_id}
    assert sorted(cached for _, cached in answers) == [False] + [True] * 7


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_get_distinct_sequential_numbers(dev, deploy):
    deploy(dev, "a")
    barrier = threading.Barrier(4)

    def batch_once(_: int) -> None:
        barrier.wait()
        batch_trigger(dev, [BatchItem("a", {}) for _ in range(25)])

    assert run_concurrently(batch_once, 4) == []
    numbers = sorted(Run.objects.values_list("number", flat=True))
    assert numbers == list(range(1, 101))


def test_a_large_batch_stores_every_field_like_a_single_trigger(dev, deploy):
    """Batches of 100+ are written with COPY on PostgreSQL: same rows as the ORM."""
    deploy(dev, "a")
    options = TriggerOptions(
        tags=["b", "a"], metadata={"n": [1, {"x": None}]}, ttl="1h", priority=5
    )
    batch, runs, _ = batch_trigger(
        dev, [BatchItem("a", {"i": i, "é": "ü"}, options=options) for i in range(150)]
    )
    single, _ = trigger(dev, "a", {"i": 0, "é": "ü"}, options)
    stored = Run.objects.get(pk=runs[0].pk)
    for field in ("tags", "metadata", "seed_metadata", "ttl", "priority_ms", "queue"):
        assert getattr(stored, field) == getattr(single, field), field
    assert json.loads(stored.payload) == {"i": 0, "é": "ü"}
    assert stored.batch_id == batch.pk and stored.batch_index == 0
    assert stored.queue_timestamp == stored.queued_at - timedelta(seconds=5)
    assert RunTag.objects.filter(run__batch=batch).count() == 300
    assert RunEvent.objects.filter(run__batch=batch, status="QUEUED").count() == 150
    assert [r.pk for r in runs] == sorted(r.pk for r in runs)
