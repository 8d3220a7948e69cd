from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from runs.lifecycle import record_events, transition
from runs.metadata import MetadataUpdate, update_metadata
from runs.models import Run, RunEvent, RunEventKind
from runs.statuses import RunStatus
from tests.realtime.test_runs_list_live import receive_until

pytestmark = pytest.mark.django_db(transaction=True)


def log_line(run: Run, message: str) -> None:
    record_events(
        [
            RunEvent(
                run=run,
                environment_id=run.environment_id,
                kind=RunEventKind.LOG,
                level="info",
                message=message,
                created_at=run.created_at,
            )
        ]
    )


async def test_a_run_page_starts_with_a_snapshot_of_its_fragments(
    connect, alice, dev, make_run
):
    run = await sync_to_async(make_run)(dev)
    communicator = await connect(alice, f"/ws/env/dev/runs/{run.friendly_id}/")
    snapshot = await communicator.receive_from(timeout=5)
    assert snapshot.startswith('<tbody id="run-events"')
    for fragment in (
        "run-header",
        "run-metadata",
        "run-attempts",
        "run-related",
        "env-counters",
    ):
        assert f'id="{fragment}"' in snapshot
    assert "Run triggered" in snapshot  # the history so far


async def test_metadata_changes_reach_the_run_page(connect, bob, dev, make_run):
    run = await sync_to_async(make_run)(dev)
    communicator = await connect(bob, f"/ws/env/dev/runs/{run.friendly_id}/")
    await communicator.receive_from(timeout=5)

    loaded = await sync_to_async(Run.objects.get)(pk=run.pk)
    await sync_to_async(update_metadata)(
        loaded, MetadataUpdate(metadata={"progress": 0.42, "stage": "resizing"})
    )
    messages = await receive_until(communicator, lambda m: "resizing" in m)
    assert 'id="run-metadata"' in messages[-1]
    assert 'aria-valuenow="42"' in messages[-1]  # the progress bar


async def test_log_lines_are_appended_and_child_statuses_follow(
    connect, alice, dev, make_run
):
    parent = await sync_to_async(make_run)(dev)
    child = await sync_to_async(make_run)(dev, parent_run_id=parent.friendly_id)
    communicator = await connect(alice, f"/ws/env/dev/runs/{parent.friendly_id}/")
    await communicator.receive_from(timeout=5)

    await sync_to_async(log_line)(parent, "resizing image 1 of 3")
    message = await communicator.receive_from(timeout=5)
    assert message.startswith('<tbody hx-swap-oob="beforeend:#run-events"')
    assert "resizing image 1 of 3" in message
    assert message.count('<tr id="event-') == 1  # only the new line

    await sync_to_async(transition)(child.pk, RunStatus.DEQUEUED)
    messages = await receive_until(
        communicator, lambda m: 'id="run-related"' in m and "DEQUEUED" in m.upper()
    )
    assert child.friendly_id in messages[-1]


async def test_another_environment_run_page_is_forbidden_and_unknown_runs_not_found(
    connect, bob, alice, prod, dev, make_run
):
    other = await sync_to_async(make_run)(prod)
    communicator = await connect(bob, f"/ws/env/prod/runs/{other.friendly_id}/")
    assert (await communicator.receive_output(timeout=5))["code"] == 4403
    communicator = await connect(alice, "/ws/env/dev/runs/run_doesnotexist/")
    assert (await communicator.receive_output(timeout=5))["code"] == 4404
