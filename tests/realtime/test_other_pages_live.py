from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from runs import bulk
from runs.bulk_targets import target_from_run_ids
from runs.deployments import TaskSpec, register_tasks
from runs.lifecycle import transition
from runs.statuses import RunStatus
from runs.triggering import BatchItem, batch_trigger
from tests.realtime.conftest import rows_in
from tests.realtime.test_runs_list_live import receive_until

pytestmark = pytest.mark.django_db(transaction=True)


def make_batch(env, deploy, size=3):
    deploy(env, "resize")
    batch, runs, _ = batch_trigger(
        env,
        [BatchItem(task_identifier="resize", payload={"i": i}) for i in range(size)],
    )
    return batch, runs


async def test_a_batch_page_shows_its_progress_and_its_runs_live(
    connect, alice, dev, deploy
):
    batch, runs = await sync_to_async(make_batch)(dev, deploy)
    communicator = await connect(alice, f"/ws/env/dev/batches/{batch.friendly_id}/")
    snapshot = await communicator.receive_from(timeout=5)
    assert set(rows_in(snapshot)) == {r.friendly_id for r in runs}
    assert 'id="batch-summary"' in snapshot

    await sync_to_async(transition)(runs[0].pk, RunStatus.DEQUEUED)
    messages = await receive_until(communicator, lambda m: 'id="batch-summary"' in m)
    assert rows_in("".join(messages))[runs[0].friendly_id] == ("DEQUEUED", False)


async def test_a_bulk_action_page_follows_its_progress(connect, alice, dev, make_run):
    run = await sync_to_async(make_run)(dev)

    def create():
        return bulk.create_bulk_action(
            target_from_run_ids(dev, [run.friendly_id]), "cancel"
        )

    action = await sync_to_async(create)()
    communicator = await connect(
        alice, f"/ws/env/dev/bulk-actions/{action.friendly_id}/"
    )
    snapshot = await communicator.receive_from(timeout=5)
    assert f'id="bulk-summary-{action.friendly_id}"' in snapshot

    await sync_to_async(bulk.run_pending_bulk_actions)()
    messages = await receive_until(
        communicator,
        lambda m: 'data-status="COMPLETED"' in m and "bulk-summary" in m,
        timeout=10,
    )
    assert f'id="bulk-items-latest-{action.friendly_id}"' in messages[-1]


async def test_a_new_bulk_action_appears_on_top_of_the_list(
    connect, alice, dev, make_run
):
    run = await sync_to_async(make_run)(dev)
    communicator = await connect(alice, "/ws/env/dev/bulk-actions/")
    await communicator.receive_from(timeout=5)  # counters

    def create():
        return bulk.create_bulk_action(
            target_from_run_ids(dev, [run.friendly_id]), "cancel"
        )

    action = await sync_to_async(create)()
    messages = await receive_until(communicator, lambda m: "bulk-row-" in m)
    assert messages[-1].startswith('<tbody hx-swap-oob="afterbegin:#bulk-rows"')
    assert f'id="bulk-row-{action.friendly_id}"' in messages[-1]


async def test_a_new_deployment_appears_in_the_deployments_list(
    connect, bob, dev, deploy
):
    await sync_to_async(deploy)(dev, "resize")
    communicator = await connect(bob, "/ws/env/dev/deployments/")
    snapshot = await communicator.receive_from(timeout=5)
    assert 'id="deployments-body"' in snapshot

    deployment = await sync_to_async(register_tasks)(
        dev, [TaskSpec(slug="resize-v2", module="tests.fake_tasks", function="f")]
    )
    messages = await receive_until(communicator, lambda m: deployment.version in m)
    assert 'id="deployments-body"' in messages[-1]
