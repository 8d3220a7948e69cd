"""The bulk action service: targets, preview, processing, counts, resume, abort."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from realtime.models import LiveSignal
from runs import bulk, bulk_targets
from runs.errors import InvalidInput, Unprocessable
from runs.models import (
    BulkActionItem,
    BulkActionStatus,
    Deployment,
    Run,
    RunEvent,
)
from runs.statuses import RunStatus
from tests.bulk.conftest import process_all

pytestmark = pytest.mark.django_db


def _filter(env, **data):
    return bulk.target_from_filter(env, data)


def _canceled_events(run_ids) -> int:
    return RunEvent.objects.filter(
        run_id__in=run_ids, kind="status", status=RunStatus.CANCELED
    ).count()


# --- cancel -----------------------------------------------------------------------


def test_filter_based_cancel_cancels_every_matching_queued_run(dev, runs_in):
    queued = runs_in(dev, "QUEUED", 4)
    other_task = runs_in(dev, "QUEUED", 2, task="task-b")
    action = bulk.create_bulk_action(
        _filter(dev, task="task-a", status="QUEUED"), "cancel", name="stop task-a"
    )
    assert (action.status, action.targeted, action.name) == (
        "PENDING",
        4,
        "stop task-a",
    )

    action = process_all(action)

    assert action.status == BulkActionStatus.COMPLETED
    assert action.started_at and action.completed_at
    assert (action.processed, action.succeeded, action.skipped, action.failed) == (
        4,
        4,
        0,
        0,
    )
    assert {r.status for r in Run.objects.filter(pk__in=[r.pk for r in queued])} == {
        RunStatus.CANCELED
    }
    assert Run.objects.get(pk=queued[0].pk).status_reason == (
        f"Canceled by bulk action {action.friendly_id}"
    )
    assert {
        r.status for r in Run.objects.filter(pk__in=[r.pk for r in other_task])
    } == {RunStatus.QUEUED}
    assert _canceled_events([r.pk for r in queued]) == 4
    assert set(action.items.values_list("outcome", flat=True)) == {"succeeded"}


def test_mixed_eligible_and_finished_runs_are_counted_succeeded_and_skipped(
    dev, runs_in
):
    queued = runs_in(dev, "QUEUED", 3)
    executing = runs_in(dev, "EXECUTING", 2)
    finished = runs_in(dev, "COMPLETED", 2) + runs_in(dev, "FAILED", 1)
    target = _filter(dev, task="task-a")

    preview = bulk.preview(target, "cancel")
    assert (preview.targeted, preview.eligible) == (8, 5)
    assert bulk.preview(target, "replay").eligible == 8

    action = process_all(bulk.create_bulk_action(target, "cancel"))

    assert (action.targeted, action.processed) == (8, 8)
    assert (action.succeeded, action.skipped, action.failed) == (5, 3, 0)
    for run in queued + executing:
        run.refresh_from_db()
        assert run.status == RunStatus.CANCELED
    for run in finished:
        status = run.status
        run.refresh_from_db()
        assert run.status == status
    outcomes = dict(action.items.values_list("run_id", "outcome"))
    assert {outcomes[r.pk] for r in finished} == {"skipped"}


def test_runs_that_finish_before_the_action_reaches_them_are_skipped(
    dev, runs_in, monkeypatch
):
    monkeypatch.setattr(bulk, "CANCEL_CHUNK", 2)
    runs = runs_in(dev, "QUEUED", 6)
    action = bulk.create_bulk_action(
        bulk.target_from_run_ids(dev, [r.friendly_id for r in runs]), "cancel"
    )
    bulk.process_next_chunk(action.pk)
    reached = set(action.items.values_list("run_id", flat=True))
    late = next(r for r in runs if r.pk not in reached)
    Run.objects.filter(pk=late.pk).update(
        status=RunStatus.COMPLETED, finished_at=timezone.now()
    )
    action = process_all(action)
    assert (action.succeeded, action.skipped) == (5, 1)
    assert action.items.get(run=late).outcome == "skipped"
    assert Run.objects.get(pk=late.pk).status == RunStatus.COMPLETED


def test_children_of_canceled_runs_are_canceled_but_not_counted(dev, runs_in, make_run):
    parent = runs_in(dev, "EXECUTING", 1)[0]
    child = make_run(dev, task="task-child", parent_run_id=parent.friendly_id)
    action = process_all(
        bulk.create_bulk_action(
            bulk.target_from_run_ids(dev, [parent.friendly_id]), "cancel"
        )
    )
    child.refresh_from_db()
    assert child.status == RunStatus.CANCELED
    assert child.status_reason == "Parent run was canceled"
    assert (action.processed, action.succeeded) == (1, 1)


def test_a_filter_is_frozen_at_submit_and_later_runs_are_left_alone(
    dev, runs_in, monkeypatch
):
    earlier = runs_in(dev, "QUEUED", 2)
    target = _filter(dev, status="QUEUED", period="1h")
    window = target.params["filter"]
    assert "period" not in window
    assert window["from"] < window["to"] <= timezone.now().isoformat()
    action = bulk.create_bulk_action(target, "cancel")
    later = runs_in(dev, "QUEUED", 2)

    action = process_all(action)

    assert action.processed == 2
    assert {Run.objects.get(pk=r.pk).status for r in earlier} == {RunStatus.CANCELED}
    assert {Run.objects.get(pk=r.pk).status for r in later} == {RunStatus.QUEUED}


def test_processing_is_chunked_with_the_same_queries_whatever_the_chunk_size(
    dev, runs_in, monkeypatch
):
    monkeypatch.setattr(bulk, "LANES", 1)

    def queries_for_one_chunk(size: int) -> int:
        monkeypatch.setattr(bulk, "CANCEL_CHUNK", size)
        runs = runs_in(dev, "QUEUED", size + 1, task=f"task-{size}")
        action = bulk.create_bulk_action(_filter(dev, task=f"task-{size}"), "cancel")
        with CaptureQueriesContext(connection) as ctx:
            result = bulk.process_next_chunk(action.pk)
        assert (result.processed, result.finished) == (size, False)
        assert (
            Run.objects.filter(
                pk__in=[r.pk for r in runs], status=RunStatus.CANCELED
            ).count()
            == size
        )
        return len(ctx.captured_queries)

    assert queries_for_one_chunk(3) == queries_for_one_chunk(30)


# --- replay -------------------------------------------------------------------------


def test_filter_based_replay_creates_one_new_run_per_failed_run(dev, runs_in):
    failed = runs_in(dev, "FAILED", 3, tags=["eu"], metadata={"k": 1})
    runs_in(dev, "COMPLETED", 2)
    action = process_all(
        bulk.create_bulk_action(_filter(dev, status="FAILED"), "replay")
    )
    assert (action.targeted, action.processed, action.succeeded) == (3, 3, 3)
    items = list(action.items.select_related("run", "new_run"))
    assert {i.run_id for i in items} == {r.pk for r in failed}
    for item in items:
        new = item.new_run
        assert new.replayed_from_id == item.run_id
        assert new.status == RunStatus.QUEUED
        assert (new.payload, new.tags, new.metadata) == (
            item.run.payload,
            ["eu"],
            {"k": 1},
        )
    assert Run.objects.filter(replayed_from__in=failed).count() == 3


def test_selection_based_replay_on_the_original_version(dev, runs_in, deploy):
    old = runs_in(dev, "COMPLETED", 2)
    Run.objects.filter(pk__in=[r.pk for r in old]).update(
        version=Deployment.objects.get(environment=dev, is_current=True).version
    )
    deploy(dev, "task-a", "task-z")  # a newer version becomes current
    current = Deployment.objects.get(environment=dev, is_current=True).version
    pinned = process_all(
        bulk.create_bulk_action(
            bulk.target_from_run_ids(dev, [r.friendly_id for r in old]),
            "replay",
            use_current_version=False,
        )
    )
    originals = {r.version for r in Run.objects.filter(pk__in=[r.pk for r in old])}
    new_runs = Run.objects.filter(pk__in=pinned.items.values("new_run_id"))
    assert {r.lock_to_version for r in new_runs} == originals != {current}

    latest = process_all(
        bulk.create_bulk_action(
            bulk.target_from_run_ids(dev, [r.friendly_id for r in old]), "replay"
        )
    )
    new_runs = Run.objects.filter(pk__in=latest.items.values("new_run_id"))
    assert {r.lock_to_version for r in new_runs} == {""}


def test_a_replay_that_cannot_be_made_is_counted_failed_with_its_reason(dev, runs_in):
    ok, gone = runs_in(dev, "FAILED", 2)
    Run.objects.filter(pk=gone.pk).update(version="19990101.1")
    action = process_all(
        bulk.create_bulk_action(
            bulk.target_from_run_ids(dev, [ok.friendly_id, gone.friendly_id]),
            "replay",
            use_current_version=False,
        )
    )
    assert (action.succeeded, action.failed) == (1, 1)
    item = action.items.get(run=gone)
    assert item.outcome == "failed" and item.new_run is None
    assert "19990101.1" in item.message


def test_replay_these_runs_again_targets_the_runs_acted_on(dev, runs_in):
    failed = runs_in(dev, "FAILED", 2)
    first = process_all(
        bulk.create_bulk_action(_filter(dev, status="FAILED"), "replay")
    )
    again = bulk.target_from_bulk_action(first)
    assert set(again.queryset().values_list("pk", flat=True)) == {r.pk for r in failed}
    second = process_all(bulk.create_bulk_action(again, "replay"))
    assert second.succeeded == 2
    assert Run.objects.filter(replayed_from__in=failed).count() == 4


# --- robustness ----------------------------------------------------------------------


class Crash(Exception):
    pass


@pytest.mark.parametrize("action_type", ["cancel", "replay"])
def test_a_crash_mid_way_resumes_without_touching_a_run_twice(
    dev, runs_in, monkeypatch, action_type
):
    monkeypatch.setattr(bulk, "CANCEL_CHUNK", 2)
    monkeypatch.setattr(bulk, "REPLAY_CHUNK", 2)
    runs = runs_in(dev, "QUEUED", 5)
    action = bulk.create_bulk_action(_filter(dev, task="task-a"), action_type)
    assert not bulk.process_next_chunk(action.pk).finished

    # The second chunk dies after its runs were changed, before it could commit.
    def crash(*args, **kwargs):
        raise Crash("worker killed")

    with monkeypatch.context() as patched:
        patched.setattr(bulk, "_record_progress", crash)
        with pytest.raises(Crash):
            bulk.process_next_chunk(action.pk)

    action.refresh_from_db()
    assert action.processed == 2  # the crashed chunk left nothing behind
    assert action.items.count() == 2

    action = process_all(action)
    ids = [r.pk for r in runs]
    assert (action.processed, action.succeeded) == (5, 5)
    assert action.items.count() == 5
    if action_type == "cancel":
        assert _canceled_events(ids) == 5
    else:
        assert Run.objects.filter(replayed_from_id__in=ids).count() == 5


def test_a_lost_cursor_never_makes_a_run_processed_twice(dev, runs_in, monkeypatch):
    monkeypatch.setattr(bulk, "REPLAY_CHUNK", 2)
    runs = runs_in(dev, "FAILED", 5)
    action = bulk.create_bulk_action(_filter(dev, task="task-a"), "replay")
    bulk.process_next_chunk(action.pk)
    bulk.process_next_chunk(action.pk)
    action.lanes.update(after_id=None, after_created=None, done=False)
    action = process_all(action)
    assert action.items.count() == 5
    assert Run.objects.filter(replayed_from__in=runs).count() == 5


def test_abort_stops_a_running_bulk_action(dev, runs_in, monkeypatch, alice):
    monkeypatch.setattr(bulk, "CANCEL_CHUNK", 2)
    runs = runs_in(dev, "QUEUED", 6)
    action = bulk.create_bulk_action(_filter(dev, task="task-a"), "cancel")
    bulk.process_next_chunk(action.pk)

    assert bulk.abort_bulk_action(action, user=alice, via="dashboard")
    assert action.status == BulkActionStatus.ABORTED
    assert (action.aborted_by, action.aborted_via) == (alice, "dashboard")
    assert action.completed_at is not None
    assert bulk.process_next_chunk(action.pk).finished
    assert bulk.run_pending_bulk_actions() == 0

    action.refresh_from_db()
    assert action.processed == 2
    assert (
        Run.objects.filter(pk__in=[r.pk for r in runs], status=RunStatus.QUEUED).count()
        == 4
    )
    assert not bulk.abort_bulk_action(action)  # already over


def test_a_completed_bulk_action_cannot_be_aborted(dev, runs_in):
    runs_in(dev, "QUEUED", 1)
    action = process_all(bulk.create_bulk_action(_filter(dev, task="task-a"), "cancel"))
    assert not bulk.abort_bulk_action(action)
    assert action.status == BulkActionStatus.COMPLETED


def test_more_than_the_limit_is_refused_clearly(dev, runs_in, monkeypatch):
    monkeypatch.setattr(bulk, "MAX_TARGETS", 3)
    runs_in(dev, "QUEUED", 4)
    target = _filter(dev, task="task-a")
    assert bulk.preview(target, "cancel").too_many
    with pytest.raises(Unprocessable, match="more than 3 runs"):
        bulk.create_bulk_action(target, "cancel")


def test_bad_targets_and_options_are_refused(dev, runs_in, monkeypatch):
    run = runs_in(dev, "QUEUED", 1)[0]
    with pytest.raises(InvalidInput, match="Invalid status values: NOPE"):
        _filter(dev, status="NOPE")
    with pytest.raises(
        InvalidInput, match="not found in this environment: run_missing"
    ):
        bulk.target_from_run_ids(dev, [run.friendly_id, "run_missing"])
    with pytest.raises(InvalidInput, match="at least one run"):
        bulk.target_from_run_ids(dev, [])
    monkeypatch.setattr(bulk_targets, "MAX_RUN_IDS", 1)
    with pytest.raises(InvalidInput, match="at most 1 runs"):
        bulk.target_from_run_ids(dev, [run.friendly_id, "run_other"])
    target = _filter(dev, task="task-a")
    with pytest.raises(InvalidInput, match="action must be"):
        bulk.create_bulk_action(target, "delete")
    with pytest.raises(InvalidInput, match="at most 255"):
        bulk.create_bulk_action(target, "cancel", name="x" * 256)
    with pytest.raises(Unprocessable, match="No runs match"):
        bulk.create_bulk_action(_filter(dev, task="nothing-here"), "cancel")


def test_a_selection_from_another_environment_is_not_found(dev, prod, runs_in):
    run = runs_in(prod, "QUEUED", 1)[0]
    with pytest.raises(InvalidInput, match="not found"):
        bulk.target_from_run_ids(dev, [run.friendly_id])


def test_progress_is_published_with_every_chunk(dev, runs_in, monkeypatch):
    monkeypatch.setattr(bulk, "LANES", 1)
    monkeypatch.setattr(bulk, "CANCEL_CHUNK", 2)
    runs_in(dev, "QUEUED", 3)
    action = bulk.create_bulk_action(_filter(dev, task="task-a"), "cancel")
    signals = LiveSignal.objects.filter(kind="bulk", object_id=action.pk)
    assert signals.count() == 1  # created
    bulk.process_next_chunk(action.pk)
    assert signals.count() == 2
    assert signals.latest("id").environment_id == dev.pk
    process_all(action)
    assert signals.count() == 3
    bulk.abort_bulk_action(action)
    assert signals.count() == 3  # nothing changed, nothing published


def test_a_crashed_chunk_publishes_nothing(dev, runs_in, monkeypatch):
    monkeypatch.setattr(bulk, "LANES", 1)
    runs_in(dev, "QUEUED", 1)
    action = bulk.create_bulk_action(_filter(dev, task="task-a"), "cancel")
    before = LiveSignal.objects.filter(kind="bulk").count()

    def crash(*args, **kwargs):
        raise Crash("boom")

    monkeypatch.setattr(bulk, "cancel_runs", crash)
    with pytest.raises(Crash):
        bulk.process_next_chunk(action.pk)
    assert LiveSignal.objects.filter(kind="bulk").count() == before


def test_the_scheduler_pass_processes_several_chunks_and_takes_turns(
    dev, runs_in, monkeypatch
):
    monkeypatch.setattr(bulk, "CANCEL_CHUNK", 2)
    monkeypatch.setattr(bulk, "PASS_BUDGET", 30)  # a slow machine still finishes
    runs_in(dev, "QUEUED", 5, task="task-a")
    runs_in(dev, "QUEUED", 5, task="task-b")
    first = bulk.create_bulk_action(_filter(dev, task="task-a"), "cancel")
    second = bulk.create_bulk_action(_filter(dev, task="task-b"), "cancel")
    from runs.engine import scheduler

    order = []
    real_chunk = bulk.process_next_chunk

    def spy(pk, **kwargs):
        order.append(pk)
        return real_chunk(pk, **kwargs)

    monkeypatch.setattr(bulk, "process_next_chunk", spy)
    assert scheduler.tick() == 10
    assert order[:4] == [first.pk, second.pk, first.pk, second.pk]  # in turns
    for action in (first, second):
        action.refresh_from_db()
        assert action.status == BulkActionStatus.COMPLETED


def test_a_failing_bulk_action_records_its_error_and_others_go_on(
    dev, runs_in, monkeypatch
):
    runs_in(dev, "QUEUED", 1, task="task-a")
    runs_in(dev, "FAILED", 1, task="task-b")
    broken = bulk.create_bulk_action(_filter(dev, task="task-a"), "cancel")
    fine = bulk.create_bulk_action(_filter(dev, task="task-b"), "replay")

    def crash(*args, **kwargs):
        raise Crash("database said no")

    monkeypatch.setattr(bulk, "_failing", {})
    with monkeypatch.context() as broken_database:
        broken_database.setattr(bulk, "cancel_runs", crash)
        assert bulk.run_pending_bulk_actions(budget=0.2) == 1
    broken.refresh_from_db()
    fine.refresh_from_db()
    assert broken.status == BulkActionStatus.PENDING
    assert broken.last_error == "Crash: database said no"
    assert fine.status == BulkActionStatus.COMPLETED
    # It is left alone for a while, then tried again (and succeeds, now).
    assert bulk.run_pending_bulk_actions(budget=0.2) == 0
    bulk._failing.clear()
    assert bulk.run_pending_bulk_actions(budget=0.2) == 1
    broken.refresh_from_db()
    assert (broken.status, broken.last_error) == (BulkActionStatus.COMPLETED, "")


def test_the_filter_is_described_in_words(dev):
    target = bulk.target_from_filter(
        dev,
        {
            "status": "finished,QUEUED",
            "task": "send-email",
            "tag": "eu",
            "from": "2026-11-25T09:00:00Z",
            "to": "2026-11-25T12:00:00Z",
            "is_test": "false",
        },
        now=timezone.now() + timedelta(days=3650),
    )
    assert target.describe() == (
        "Status is Queued or Any finished · Task is send-email · Tagged eu · "
        "No test runs · Created 2026-11-25 09:00:00 → 2026-11-25 12:00:00 UTC"
    )


def test_items_are_unique_per_bulk_action_and_run(dev, runs_in):
    from django.db import IntegrityError, transaction

    run = runs_in(dev, "QUEUED", 1)[0]
    action = process_all(bulk.create_bulk_action(_filter(dev, task="task-a"), "cancel"))
    with pytest.raises(IntegrityError), transaction.atomic():
        BulkActionItem.objects.create(
            bulk_action=action, run=run, outcome="skipped", created_at=timezone.now()
        )


# --- lanes (PostgreSQL) ---------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_lanes_are_worked_on_by_threads_at_once_and_finish_together(
    dev, runs_in, monkeypatch
):
    monkeypatch.setattr(bulk, "CANCEL_CHUNK", 3)
    monkeypatch.setattr(bulk, "LANE_MIN_RUNS", 10)
    runs = runs_in(dev, "QUEUED", 20)
    action = bulk.create_bulk_action(_filter(dev, task="task-a"), "cancel")
    first, second = action.lanes.all()
    assert bulk.LANES == 2
    # contiguous halves of the keyset order: the first ends where the second starts
    assert (first.after_id, second.until_id) == (None, None)
    assert (first.until_id, first.until_created) == (
        second.after_id,
        second.after_created,
    )
    assert first.until_id == runs[9].pk

    seen_threads = set()
    real_cancel = bulk._cancel

    def spy(*args, **kwargs):
        seen_threads.add(threading.get_ident())
        return real_cancel(*args, **kwargs)

    monkeypatch.setattr(bulk, "_cancel", spy)
    assert bulk.run_pending_bulk_actions(budget=10) == 20
    action.refresh_from_db()
    assert (action.status, action.processed, action.succeeded) == ("COMPLETED", 20, 20)
    assert len(seen_threads) == 2
    assert all(lane.done for lane in action.lanes.all())
    assert action.items.count() == 20
    assert _canceled_events([r.pk for r in runs]) == 20


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_abort_during_a_chunk_rolls_that_chunk_back(dev, runs_in, monkeypatch):
    monkeypatch.setattr(bulk, "LANES", 1)
    runs = runs_in(dev, "QUEUED", 3)
    action = bulk.create_bulk_action(_filter(dev, task="task-a"), "cancel")
    real_cancel = bulk._cancel

    def abort_meanwhile(*args, **kwargs):
        counts = real_cancel(*args, **kwargs)
        # Another connection (a user in the dashboard) aborts while the chunk runs.
        aborter = threading.Thread(target=_abort_in_own_connection, args=(action,))
        aborter.start()
        aborter.join(10)
        return counts

    monkeypatch.setattr(bulk, "_cancel", abort_meanwhile)
    assert bulk.process_next_chunk(action.pk).processed == 0
    action.refresh_from_db()
    assert (action.status, action.processed) == ("ABORTED", 0)
    assert not action.items.exists()
    assert {Run.objects.get(pk=r.pk).status for r in runs} == {RunStatus.QUEUED}


def _abort_in_own_connection(action) -> None:
    try:
        assert bulk.abort_bulk_action(action, via="api")
    finally:
        connection.close()


def test_an_environment_runs_a_bounded_number_of_bulk_actions_at_once(
    dev, prod, runs_in, monkeypatch
):
    monkeypatch.setattr(bulk, "MAX_ACTIVE", 2)
    runs_in(dev, "QUEUED", 1)
    runs_in(prod, "QUEUED", 1)
    first = bulk.create_bulk_action(_filter(dev, task="task-a"), "replay")
    bulk.create_bulk_action(_filter(dev, task="task-a"), "replay")
    with pytest.raises(bulk.TooManyActive, match="only run 2 bulk actions at a time"):
        bulk.create_bulk_action(_filter(dev, task="task-a"), "cancel")
    bulk.create_bulk_action(_filter(prod, task="task-a"), "cancel")  # per environment
    bulk.abort_bulk_action(first)
    bulk.create_bulk_action(_filter(dev, task="task-a"), "cancel")


def test_a_status_group_is_described_as_the_group(dev):
    target = bulk.target_from_filter(dev, {"status": "failed", "period": "1h"})
    assert target.describe().startswith("Status is Any failed · ")
