"""Every legal transition works, every illegal one is refused, races have one winner."""

from __future__ import annotations

import pytest
from django.db.models import Q

from runs.lifecycle import (
    IllegalTransition,
    queue_runs,
    record_events,
    transition,
    transition_many,
)
from runs.models import Run, RunEvent
from runs.statuses import ALLOWED_FROM, FINISHED, RunStatus

pytestmark = pytest.mark.django_db

S = RunStatus
LEGAL = sorted((src, to) for to, sources in ALLOWED_FROM.items() for src in sources)
ILLEGAL = sorted((src, to) for to in S for src in S if src not in ALLOWED_FROM[to])

# The lifecycle as the issue describes it, written out independently of statuses.py:
# if either side changes, this test says which pair.
EXPECTED_LEGAL = {
    (S.DELAYED, S.DELAYED),  # reschedule
    (S.PENDING_VERSION, S.QUEUED),  # a deployment brings the task
    (S.DELAYED, S.QUEUED),  # delay elapsed
    (S.WAITING, S.QUEUED),  # retry due
    (S.DEQUEUED, S.QUEUED),  # worker lost / shut down
    (S.EXECUTING, S.QUEUED),
    (S.QUEUED, S.DEQUEUED),  # claimed
    (S.DEQUEUED, S.EXECUTING),  # attempt started
    (S.WAITING, S.EXECUTING),  # child finished, parent resumes
    (S.EXECUTING, S.WAITING),  # retry backoff or waiting for a child
    (S.EXECUTING, S.COMPLETED),
    (S.EXECUTING, S.FAILED),
    (S.WAITING, S.FAILED),
    (S.DEQUEUED, S.CRASHED),
    (S.EXECUTING, S.CRASHED),
    (S.WAITING, S.CRASHED),
    (S.EXECUTING, S.TIMED_OUT),
    (S.QUEUED, S.EXPIRED),
    (S.PENDING_VERSION, S.EXPIRED),
    (S.DEQUEUED, S.INTERRUPTED),
    (S.EXECUTING, S.INTERRUPTED),
    (S.WAITING, S.INTERRUPTED),
    *(
        (src, S.SYSTEM_FAILURE)
        for src in (S.PENDING_VERSION, S.DELAYED, S.QUEUED, S.DEQUEUED)
    ),
    (S.EXECUTING, S.SYSTEM_FAILURE),
    (S.WAITING, S.SYSTEM_FAILURE),
    *((src, S.CANCELED) for src in S if src not in FINISHED),
}


def force(run: Run, status: str) -> None:
    Run.objects.filter(pk=run.pk).update(status=status)


def test_the_transition_table_is_the_documented_lifecycle():
    assert set(LEGAL) == EXPECTED_LEGAL


def test_no_status_leaves_a_finished_status():
    assert not [(src, to) for src, to in LEGAL if src in FINISHED]


def test_every_legal_transition_moves_the_run_and_records_it(dev, make_run):
    run = make_run(dev)
    for src, to in LEGAL:
        force(run, src)
        events = RunEvent.objects.filter(run=run, status=to).count()
        assert transition(run.pk, to, allowed_from=[src]), f"{src} → {to}"
        assert Run.objects.get(pk=run.pk).status == to
        assert RunEvent.objects.filter(run=run, status=to).count() == events + 1


def test_every_illegal_transition_is_refused_before_touching_the_database(
    dev, make_run, django_assert_num_queries
):
    run = make_run(dev)
    for src, to in ILLEGAL:
        with django_assert_num_queries(0), pytest.raises(IllegalTransition):
            transition(run.pk, to, allowed_from=[src])
        with django_assert_num_queries(0), pytest.raises(IllegalTransition):
            transition_many([run.pk], to, allowed_from=[src])


def test_a_run_in_an_illegal_source_status_is_left_alone(dev, make_run):
    run = make_run(dev)
    for src, to in ILLEGAL:
        force(run, src)
        assert not transition(run.pk, to), f"{src} → {to} moved"
        assert Run.objects.get(pk=run.pk).status == src


def test_the_loser_of_a_race_changes_nothing(dev, make_run):
    run = make_run(dev)
    assert transition(run.pk, S.CANCELED)
    events = RunEvent.objects.filter(run=run).count()
    assert not transition(run.pk, S.DEQUEUED)
    assert Run.objects.get(pk=run.pk).status == S.CANCELED
    assert RunEvent.objects.filter(run=run).count() == events


def test_where_guards_on_the_holder(dev, make_run):
    run = make_run(dev)
    Run.objects.filter(pk=run.pk).update(
        status=S.EXECUTING, worker_id="w1", attempt_count=2
    )
    assert not transition(run.pk, S.COMPLETED, where=Q(worker_id="w1", attempt_count=1))
    assert not transition_many([run.pk], S.COMPLETED, where=Q(worker_id="w2"))
    assert transition(run.pk, S.COMPLETED, where=Q(worker_id="w1", attempt_count=2))


def test_transition_many_moves_only_the_qualifying_runs(dev, make_run):
    runs = [make_run(dev) for _ in range(4)]
    force(runs[0], S.COMPLETED)
    moved = transition_many(
        [r.pk for r in runs],
        S.CANCELED,
        message="stop",
        per_run={r.pk: {"duration_ms": 10 * i} for i, r in enumerate(runs)},
    )
    assert sorted(moved) == sorted(r.pk for r in runs[1:])
    assert list(
        Run.objects.filter(pk__in=[r.pk for r in runs])
        .order_by("pk")
        .values_list("status", "duration_ms")
    ) == [(S.COMPLETED, 0), (S.CANCELED, 10), (S.CANCELED, 20), (S.CANCELED, 30)]


def test_queue_runs_orders_by_priority(dev, make_run):
    low, high = make_run(dev, delay="1h"), make_run(dev, delay="1h")
    moved = queue_runs(
        [(low.pk, 0), (high.pk, 60_000)],
        allowed_from=[S.DELAYED],
        message="due",
    )
    assert sorted(moved) == sorted([low.pk, high.pk])
    low.refresh_from_db()
    high.refresh_from_db()
    assert low.status == high.status == S.QUEUED
    assert (low.queue_timestamp - high.queue_timestamp).total_seconds() == 60


def test_a_batch_of_events_is_published_with_one_callback(
    dev, make_run, django_capture_on_commit_callbacks
):
    from realtime import publish

    runs = [make_run(dev) for _ in range(50)]
    seen = []
    publish.subscribe(seen.append)
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            record_events(
                [
                    RunEvent(
                        run=r,
                        environment_id=dev.pk,
                        kind="log",
                        message="hi",
                        created_at=r.created_at,
                    )
                    for r in runs
                ]
            )
    finally:
        publish.unsubscribe(seen.append)
    assert len(callbacks) <= 2  # the publish, plus the NOTIFY on PostgreSQL
    assert sorted(e["run_id"] for e in seen) == sorted(r.pk for r in runs)
    assert all(e["event_id"] and e["kind"] == "log" for e in seen)


def test_a_transition_is_published_only_after_commit(
    dev, make_run, django_capture_on_commit_callbacks
):
    from realtime import publish

    run = make_run(dev)
    seen = []
    publish.subscribe(seen.append)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert transition(run.pk, S.DEQUEUED)
        assert seen == []  # nothing before the commit
        for callback in callbacks:
            callback()
    finally:
        publish.unsubscribe(seen.append)
    assert [(e["run_id"], e["kind"]) for e in seen] == [(run.pk, "status")]
