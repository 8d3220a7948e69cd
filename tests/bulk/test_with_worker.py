"""Bulk actions driven by a real worker's scheduler, with real attempt processes."""

from __future__ import annotations

import pytest

from runs import bulk
from runs.models import Attempt, AttemptStatus, BulkAction, BulkActionStatus, Run
from runs.statuses import RunStatus
from runs.triggering import trigger
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _completed(action: BulkAction) -> BulkAction:
    def done():
        action.refresh_from_db()
        return action.status == BulkActionStatus.COMPLETED

    wait_until(done, timeout=15)
    return action


def test_bulk_cancel_stops_executing_runs_and_cancels_queued_ones(dev, start_worker):
    worker = start_worker(environments=["dev"], concurrency=1)
    spinning, _ = trigger(dev, "spin", {})
    queued = [trigger(dev, "spin", {})[0] for _ in range(3)]
    wait_until(lambda: Run.objects.get(pk=spinning.pk).status == RunStatus.EXECUTING)
    # the run turns EXECUTING in the claim, a moment before the worker records its attempt
    process = wait_until(lambda: next(iter(list(worker.active)), None)).process

    action = bulk.create_bulk_action(
        bulk.target_from_filter(dev, {"task": "spin"}), "cancel"
    )
    _completed(action)  # the worker's own scheduler pass did the work

    assert (action.targeted, action.succeeded, action.skipped) == (4, 4, 0)
    wait_until(lambda: not process.is_alive(), timeout=2)
    attempt = wait_until(
        lambda: Attempt.objects.filter(run=spinning, completed_at__isnull=False).first()
    )
    assert attempt.status == AttemptStatus.CANCELED
    statuses = set(
        Run.objects.filter(pk__in=[spinning.pk, *[r.pk for r in queued]]).values_list(
            "status", flat=True
        )
    )
    assert statuses == {RunStatus.CANCELED}


def test_bulk_replay_runs_the_replays_to_completion(dev, start_worker):
    start_worker(environments=["dev"])
    originals = [trigger(dev, "add", {"a": n, "b": 1})[0] for n in range(3)]
    Run.objects.filter(pk__in=[r.pk for r in originals]).update(status=RunStatus.FAILED)
    action = bulk.create_bulk_action(
        bulk.target_from_run_ids(dev, [r.friendly_id for r in originals]), "replay"
    )
    _completed(action)
    replays = Run.objects.filter(replayed_from__in=originals)
    wait_until(
        lambda: set(replays.values_list("status", flat=True)) == {RunStatus.COMPLETED},
        timeout=20,
    )
    assert sorted(r.output for r in replays) == [
        '{"sum": 1, "attempt": 1}',
        '{"sum": 2, "attempt": 1}',
        '{"sum": 3, "attempt": 1}',
    ]
