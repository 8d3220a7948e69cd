"""The single-trigger path: its cached task definitions follow new deployments, and
what it writes equals what the general path writes."""

from __future__ import annotations

import pytest

from runs.models import Run, RunEvent, RunTag
from runs.statuses import RunStatus
from runs.trigger_sql import current_tasks
from runs.triggering import TriggerOptions, trigger


@pytest.fixture(autouse=True)
def _fresh_cache():
    current_tasks.clear()
    yield
    current_tasks.clear()


@pytest.mark.django_db
def test_a_new_deployment_replaces_the_cached_task(dev, deploy):
    deploy(dev, "a", queue="first")
    first, _ = trigger(dev, "a", {})
    deploy(dev, "a", "b", queue="second")  # another task set: a new current version
    second, _ = trigger(dev, "a", {})
    assert (first.queue, second.queue) == ("first", "second")
    assert [r.number for r in Run.objects.order_by("pk")] == [1, 2]


@pytest.mark.django_db
def test_a_task_deployed_after_a_pending_trigger_is_found(dev, deploy):
    pending, _ = trigger(dev, "later", {})
    deploy(dev, "later")
    run, _ = trigger(dev, "later", {})
    assert pending.status == RunStatus.PENDING_VERSION
    assert run.status == RunStatus.QUEUED


@pytest.mark.django_db
def test_the_run_its_tags_and_its_event_are_written(dev, deploy):
    deploy(dev, "a", machine="medium-1x")
    run, cached = trigger(
        dev,
        "a",
        {"n": 1},
        TriggerOptions(tags=["b", "a"], metadata={"k": [1, 2]}, delay="1h", ttl="5m"),
    )
    stored = Run.objects.get(pk=run.pk)
    assert not cached and stored.friendly_id == run.friendly_id
    assert stored.number == run.number == 1
    assert (stored.status, stored.machine, stored.tags) == (
        RunStatus.DELAYED,
        "medium-1x",
        ["a", "b"],
    )
    assert stored.metadata == {"k": [1, 2]} and stored.seed_metadata == {"k": [1, 2]}
    assert stored.delay_until == run.delay_until and stored.ttl == "5m"
    assert stored.created_at == run.created_at
    assert sorted(RunTag.objects.filter(run=stored).values_list("tag", flat=True)) == [
        "a",
        "b",
    ]
    event = RunEvent.objects.get(run=stored)
    assert (event.kind, event.status, event.message) == (
        "status",
        RunStatus.DELAYED,
        "Run triggered",
    )


def _listener(channels):
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    listener = psycopg.connect(
        **{k: v for k, v in params.items() if k != "cursor_factory"}, autocommit=True
    )
    for channel in channels:
        listener.execute(f"LISTEN {channel}")
    return listener


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_statement_wakes_workers_then_the_live_feed(dev, deploy):
    from runs.lifecycle import EVENTS_CHANNEL, QUEUE_CHANNEL

    deploy(dev, "a")
    listener = _listener([QUEUE_CHANNEL, EVENTS_CHANNEL])
    try:
        trigger(dev, "a", {})  # QUEUED: both channels, workers first
        trigger(dev, "a", {}, TriggerOptions(delay="1h"))  # DELAYED: the feed only
        got = [n.channel for n in listener.notifies(timeout=2, stop_after=3)]
    finally:
        listener.close()
    assert got == [QUEUE_CHANNEL, EVENTS_CHANNEL, EVENTS_CHANNEL]


def _answer(run, cached):
    return 200, {"id": run.friendly_id, "isCached": cached}


@pytest.mark.django_db(transaction=True)
def test_a_receipt_is_written_with_its_run_and_never_alone(dev, deploy):
    from runs.models import IdempotentRequest
    from runs.receipts import AlreadyAnswered, Receipt

    deploy(dev, "a", queue="first")
    first, _ = trigger(dev, "a", {}, receipt=Receipt("r1", _answer))
    deploy(dev, "a", "b", queue="second")  # the cached task is stale: tried again
    second, _ = trigger(dev, "a", {}, receipt=Receipt("r2", _answer))
    with pytest.raises(AlreadyAnswered) as answered:
        trigger(dev, "a", {}, receipt=Receipt("r1", _answer))
    assert answered.value.stored.body == {"id": first.friendly_id, "isCached": False}
    stored = dict(IdempotentRequest.objects.values_list("key", "body"))
    assert stored == {
        "r1": {"id": first.friendly_id, "isCached": False},
        "r2": {"id": second.friendly_id, "isCached": False},
    }
    assert Run.objects.count() == 2 and second.queue == "second"


@pytest.mark.django_db(transaction=True)
def test_a_changed_key_writes_nothing(dev, deploy):
    from runs.errors import KeyRevoked
    from runs.models import Environment, IdempotentRequest
    from runs.receipts import Receipt

    deploy(dev, "a")
    old = dev.api_key
    trigger(dev, "a", {}, require_key=old)
    Environment.objects.filter(pk=dev.pk).update(api_key="tr_dev_" + "z" * 24)
    for options in (TriggerOptions(), TriggerOptions(idempotency_key="k")):
        with pytest.raises(KeyRevoked):
            trigger(
                dev, "a", {}, options, receipt=Receipt("r", _answer), require_key=old
            )
    assert Run.objects.count() == 1 and not IdempotentRequest.objects.exists()
