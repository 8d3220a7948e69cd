"""How attempts end, written directly (the worker writes them the same way)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from runs.actions import cancel_runs
from runs.engine import outcomes
from runs.engine.outcomes import REQUEUE, Finished, Outcome, backoff_seconds
from runs.models import Attempt, Run, RunEvent
from runs.statuses import FINISHED, RunStatus
from tests.concurrency import run_concurrently

S = RunStatus
POLICY = {"minTimeoutInMs": 1000, "maxTimeoutInMs": 5000, "factor": 2}


def executing(run: Run, *, attempt: int = 1, worker: str = "w1") -> Finished:
    """Put `run` in the state a worker leaves it in while executing `attempt`."""
    Run.objects.filter(pk=run.pk).update(
        status=S.EXECUTING, worker_id=worker, attempt_count=attempt
    )
    row = Attempt.objects.create(
        run=run, number=attempt, worker_id=worker, started_at=timezone.now()
    )
    return Finished(run.pk, row.pk, attempt, run.max_attempts, 1200, worker)


def test_backoff_is_exponential_and_capped():
    fixed = {**POLICY, "randomize": False}
    assert [backoff_seconds(n, fixed) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 5, 5]


def test_randomized_backoff_stays_between_one_and_two_times_the_base():
    randomized = {**POLICY, "randomize": True}
    for _ in range(200):
        assert 2 <= backoff_seconds(2, randomized) <= 4


@pytest.mark.django_db
def test_a_failure_with_attempts_left_waits_for_its_retry(dev, make_run):
    run = make_run(dev, max_attempts=3)
    result = executing(run)
    result.error = {"name": "ValueError", "message": "boom", "stack": ""}
    before = timezone.now()
    assert outcomes.fail(result, {**POLICY, "randomize": False}) == S.WAITING
    run.refresh_from_db()
    assert run.status == S.WAITING and run.error["message"] == "boom"
    assert timedelta(seconds=0.9) < run.retry_at - before < timedelta(seconds=1.5)
    assert run.worker_id == "" and run.duration_ms == 1200
    assert Attempt.objects.get(pk=result.attempt_id).status == "FAILED"


@pytest.mark.django_db
def test_the_last_failure_or_an_abort_is_final(dev, make_run):
    last = make_run(dev, max_attempts=2)
    result = executing(last, attempt=2)
    result.error = {"name": "RuntimeError", "message": "again"}
    assert outcomes.fail(result, POLICY) == S.FAILED
    aborted = make_run(dev, max_attempts=5)
    result = executing(aborted)
    result.error = {"name": "AbortTaskRunError", "message": "bad payload"}
    assert outcomes.fail(result, POLICY) == S.FAILED
    assert Run.objects.get(pk=aborted.pk).finished_at is not None


@pytest.mark.django_db
def test_a_late_outcome_from_a_previous_holder_changes_nothing(dev, make_run):
    run = make_run(dev)
    stale = executing(run, attempt=1, worker="w1")
    executing(run, attempt=2, worker="w2")  # recovered and claimed again
    stale.output = '"old"'
    assert outcomes.complete([stale]) == []
    stale.error = {"name": "X", "message": "late"}
    assert outcomes.fail(stale, POLICY) == ""
    assert not outcomes.end_abnormally(stale, S.CRASHED, {"message": "gone"})
    assert not outcomes.interrupt(stale, "shutdown")
    run.refresh_from_db()
    assert (run.status, run.worker_id, run.output) == (S.EXECUTING, "w2", None)


@pytest.mark.django_db
def test_write_is_all_or_nothing_and_safe_to_repeat(dev, make_run):
    done, crashed, requeued = make_run(dev), make_run(dev), make_run(dev)
    batch = [
        Outcome(executing(done), S.COMPLETED),
        Outcome(executing(crashed), S.CRASHED),
        Outcome(executing(requeued), REQUEUE, reason="Worker shut down"),
    ]
    batch[0].result.output = '{"ok": true}'
    batch[1].result.error = {"name": "TaskProcessExited", "message": "exit 3"}
    outcomes.write(batch)
    events = RunEvent.objects.count()
    outcomes.write(batch)  # a retry after a lost answer: no second transition
    assert RunEvent.objects.count() == events
    assert [Run.objects.get(pk=r.pk).status for r in (done, crashed, requeued)] == [
        S.COMPLETED,
        S.CRASHED,
        S.QUEUED,
    ]
    assert [Attempt.objects.get(run=r).status for r in (done, crashed, requeued)] == [
        "COMPLETED",
        "CRASHED",
        "INTERRUPTED",
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_cancel_racing_completion_has_one_winner_per_run(dev, make_run):
    runs = [make_run(dev) for _ in range(100)]
    results = [executing(r) for r in runs]
    for result in results:
        result.output = '"done"'
    barrier = threading.Barrier(2)

    def completer() -> None:
        barrier.wait()
        for chunk in range(0, 100, 5):
            outcomes.complete(results[chunk : chunk + 5])

    def canceler() -> None:
        barrier.wait()
        for run in reversed(runs):
            cancel_runs([run.pk])

    racers = [completer, canceler]
    assert run_concurrently(lambda i: racers[i](), 2, timeout=60) == []
    final = dict(Run.objects.values_list("pk", "status"))
    assert set(final.values()) == {S.COMPLETED, S.CANCELED}
    for run, result in zip(runs, results, strict=True):
        terminal = list(
            RunEvent.objects.filter(run=run, status__in=FINISHED).values_list(
                "status", flat=True
            )
        )
        assert terminal == [final[run.pk]]
        attempt = Attempt.objects.get(pk=result.attempt_id).status
        assert attempt == ("COMPLETED" if final[run.pk] == S.COMPLETED else "CANCELED")
        output = Run.objects.get(pk=run.pk).output
        assert (output is not None) == (final[run.pk] == S.COMPLETED)
