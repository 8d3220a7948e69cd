from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from runs.lifecycle import transition
from runs.models import Run
from runs.statuses import RunStatus
from tests.realtime.conftest import rows_in

pytestmark = pytest.mark.django_db(transaction=True)


async def receive_until(communicator, predicate, timeout: float = 5.0) -> list[str]:
    """Messages until one satisfies `predicate` (fails after `timeout` seconds)."""
    import asyncio

    messages: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        assert remaining > 0, f"no matching message in {timeout}s: {messages[-3:]}"
        message = await communicator.receive_from(timeout=remaining)
        messages.append(message)
        if predicate(message):
            return messages


async def test_anonymous_users_are_rejected(connect, dev):
    await connect(None, "/ws/env/dev/runs/", expect=False)


async def test_a_missing_origin_is_rejected(connect, alice, dev):
    await connect(alice, "/ws/env/dev/runs/", expect=False, origin=(b"x-none", b""))


async def test_a_user_without_access_is_closed_with_4403(connect, bob, prod):
    communicator = await connect(bob, "/ws/env/prod/runs/")
    assert await communicator.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": 4403,
    }


async def test_the_connection_starts_with_a_snapshot_of_the_page(
    connect, alice, dev, make_run
):
    first = await sync_to_async(make_run)(dev, tags=["vip"])
    communicator = await connect(alice, "/ws/env/dev/runs/")
    snapshot = await communicator.receive_from(timeout=5)
    assert snapshot.startswith('<tbody id="runs-body">')
    assert rows_in(snapshot) == {first.friendly_id: ("QUEUED", False)}
    assert 'id="live-state" data-state="open"' in snapshot


async def test_rows_update_for_the_environment_and_filters_watched_and_nothing_else(
    connect, bob, dev, prod, make_run
):
    queued = await sync_to_async(make_run)(dev)
    communicator = await connect(bob, "/ws/env/dev/runs/?status=QUEUED,DEQUEUED")
    await communicator.receive_from(timeout=5)  # the snapshot

    await sync_to_async(transition)(queued.pk, RunStatus.DEQUEUED)
    message = await communicator.receive_from(timeout=5)
    assert rows_in(message) == {queued.friendly_id: ("DEQUEUED", False)}
    # replaced in place
    assert message.startswith(
        f'<tbody hx-swap-oob="outerHTML:#run-{queued.friendly_id}"'
    )

    fresh = await sync_to_async(make_run)(dev)  # matches: inserted at the top of page 1
    message = await communicator.receive_from(timeout=5)
    assert rows_in(message) == {fresh.friendly_id: ("QUEUED", False)}
    assert message.startswith(
        f'<tbody hx-swap-oob="beforebegin:#run-{queued.friendly_id}"'
    )

    await sync_to_async(make_run)(prod)  # another environment
    other = await sync_to_async(make_run)(dev, delay="1h")  # DELAYED: does not match
    assert await communicator.receive_nothing(timeout=0.5)

    # a shown run that stops matching is marked stale, not removed
    await sync_to_async(transition)(queued.pk, RunStatus.EXECUTING)
    message = await communicator.receive_from(timeout=5)
    assert rows_in(message) == {queued.friendly_id: ("EXECUTING", True)}
    assert other.pk != queued.pk


async def test_a_burst_of_1000_transitions_on_one_run_delivers_the_final_state(
    connect, alice, dev, make_run
):
    run = await sync_to_async(make_run)(dev)
    await sync_to_async(transition)(run.pk, RunStatus.DEQUEUED)
    await sync_to_async(transition)(run.pk, RunStatus.EXECUTING)
    communicator = await connect(alice, "/ws/env/dev/runs/")
    await communicator.receive_from(timeout=5)

    def burst() -> str:
        if connection.vendor == "postgresql":  # commit without waiting for the disk
            with connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit TO off")
        for i in range(1000):
            transition(run.pk, RunStatus.WAITING if i % 2 == 0 else RunStatus.EXECUTING)
        Run.objects.filter(pk=run.pk).update(metadata={"progress": 1})
        return Run.objects.get(pk=run.pk).updated_at.isoformat()

    final_status = RunStatus.EXECUTING  # 1000 transitions: the last one is to EXECUTING
    last_updated = await sync_to_async(burst)()
    messages = await receive_until(
        communicator, lambda m: f'data-updated="{last_updated}"' in m, timeout=15
    )
    assert rows_in(messages[-1]) == {run.friendly_id: (final_status, False)}
    assert len(messages) < 200  # coalesced: not one message per transition
