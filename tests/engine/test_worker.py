"""The worker end to end: real attempt processes, real database, real timing."""

from __future__ import annotations

import time

import pytest

from runs.actions import cancel_run
from runs.models import Attempt, AttemptStatus, Queue, Run, RunEvent
from runs.statuses import FINISHED, RunStatus
from runs.triggering import BatchItem, TriggerOptions, batch_trigger, trigger
from tests.conftest import wait_until
from tests.engine.checks import executions, overlapped

pytestmark = pytest.mark.django_db(transaction=True)


def _finished(run: Run) -> Run:
    def done():
        run.refresh_from_db()
        return run.status in FINISHED

    wait_until(done, timeout=20)
    return run


def _statuses(run: Run) -> list[str]:
    return list(
        RunEvent.objects.filter(run=run, kind="status")
        .order_by("id")
        .values_list("status", flat=True)
    )


def test_a_run_completes_with_output_logs_and_history(dev, start_worker):
    start_worker(environments=["dev"])
    run, _ = trigger(dev, "add", {"a": 1, "b": 2})
    _finished(run)
    assert run.status == RunStatus.COMPLETED
    assert run.output == '{"sum": 3, "attempt": 1}'
    assert run.version and run.deployment_id
    assert run.started_at and run.finished_at and run.duration_ms >= 0
    assert _statuses(run) == ["QUEUED", "DEQUEUED", "EXECUTING", "COMPLETED"]
    log = RunEvent.objects.get(run=run, kind="log")
    assert (log.level, log.message, log.attributes) == (
        "info",
        "adding",
        {"a": 1, "b": 2},
    )
    attempt = Attempt.objects.get(run=run)
    assert attempt.status == AttemptStatus.COMPLETED and attempt.completed_at


def test_failures_retry_with_backoff_then_succeed(dev, start_worker):
    start_worker(environments=["dev"])
    run, _ = trigger(dev, "flaky", {"succeed_on": 3})
    _finished(run)
    assert run.status == RunStatus.COMPLETED
    assert run.attempt_count == 3
    assert list(run.attempts.values_list("status", flat=True)) == [
        "FAILED",
        "FAILED",
        "COMPLETED",
    ]
    assert _statuses(run).count("WAITING") == 2


def test_failures_end_failed_when_attempts_run_out(dev, start_worker):
    start_worker(environments=["dev"])
    run, _ = trigger(dev, "flaky", {"succeed_on": 99})
    _finished(run)
    assert run.status == RunStatus.FAILED
    assert run.attempt_count == 3
    assert run.error["name"] == "RuntimeError"
    assert "attempt 3 fails" in run.error["message"]
    assert "Traceback" in run.error["stack"]


def test_a_crashing_task_is_crashed_and_the_worker_goes_on(dev, start_worker):
    start_worker(environments=["dev"], concurrency=1)
    crashed, _ = trigger(dev, "crash", {})
    after, _ = trigger(dev, "add", {"a": 2, "b": 2})
    _finished(crashed)
    assert crashed.status == RunStatus.CRASHED
    assert "exited with code 3" in crashed.error["message"]
    _finished(after)
    assert after.status == RunStatus.COMPLETED


def test_cancel_stops_a_cpu_bound_run_within_a_second(dev, start_worker):
    worker = start_worker(environments=["dev"], concurrency=1)
    run, _ = trigger(dev, "spin", {})
    wait_until(lambda: Run.objects.get(pk=run.pk).status == RunStatus.EXECUTING)
    # the run turns EXECUTING in the claim, a moment before the worker records its attempt
    process = wait_until(lambda: next(iter(list(worker.active)), None)).process
    started = time.monotonic()
    assert cancel_run(run)
    wait_until(lambda: not process.is_alive(), timeout=1.0, interval=0.01)
    assert time.monotonic() - started < 1.0
    attempt = wait_until(
        lambda: Attempt.objects.filter(run=run, completed_at__isnull=False).first(),
        timeout=2,
    )
    assert attempt.status == AttemptStatus.CANCELED
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELED
    # the worker replaced the killed process and keeps executing
    after, _ = trigger(dev, "add", {"a": 1, "b": 1})
    assert _finished(after).status == RunStatus.COMPLETED


def test_max_duration_ends_the_run_timed_out(dev, start_worker):
    start_worker(environments=["dev"])
    run, _ = trigger(dev, "sleepy", {})
    _finished(run)
    assert run.status == RunStatus.TIMED_OUT
    assert run.error["name"] == "MaxDurationExceededError"
    assert run.attempts.get().status == AttemptStatus.TIMED_OUT


def test_metadata_and_logs_flow_from_the_task(dev, start_worker):
    start_worker(environments=["dev"])
    run, _ = trigger(dev, "progress", {}, TriggerOptions(metadata={"owner": "ops"}))
    _finished(run)
    assert run.status == RunStatus.COMPLETED
    assert run.metadata == {
        "owner": "ops",
        "progress": 1.0,
        "steps": [1, 2, 3, 4],
        "count": 2,
    }
    assert run.metadata_version > 1
    warn = RunEvent.objects.get(run=run, kind="log")
    assert (warn.level, warn.attributes) == ("warn", {"step": 4})


def test_metadata_over_256kb_fails_the_run_without_retry(dev, start_worker):
    start_worker(environments=["dev"])
    run, _ = trigger(dev, "oversize", {})
    _finished(run)
    assert run.status == RunStatus.FAILED
    assert run.error["name"] == "MetadataTooLarge"
    assert run.attempt_count == 1


def test_trigger_and_wait_returns_the_child_output(dev, start_worker):
    start_worker(environments=["dev"], concurrency=1)
    run, _ = trigger(dev, "parent", {"n": 21})
    _finished(run)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.output == '{"child": {"double": 42}, "batched": 2}'
    assert "WAITING" in _statuses(run)
    children = list(run.children.all())
    assert len(children) == 3
    assert all(c.root_id == run.pk and c.depth == 1 for c in children)
    wait_until(
        lambda: all(_finished(c).status == RunStatus.COMPLETED for c in children)
    )
    wait_until(lambda: Run.objects.get(pk=run.pk).metadata.get("children_done") == 3)


def test_delayed_run_starts_after_its_delay(dev, start_worker):
    start_worker(environments=["dev"])
    run, _ = trigger(dev, "add", {"a": 0, "b": 0}, TriggerOptions(delay="1s"))
    assert run.status == RunStatus.DELAYED
    _finished(run)
    assert run.status == RunStatus.COMPLETED
    assert run.started_at >= run.delay_until


def test_cancel_racing_completion_has_exactly_one_winner(dev, start_worker):
    start_worker(environments=["dev"], concurrency=4)
    _, runs, _ = batch_trigger(dev, [BatchItem("noop", {"i": i}) for i in range(60)])
    for run in runs:
        cancel_run(run)
    wait_until(
        lambda: (
            not Run.objects.filter(pk__in=[r.pk for r in runs])
            .exclude(status__in=FINISHED)
            .exists()
        )
    )
    for run in runs:
        terminal = [s for s in _statuses(run) if s in FINISHED]
        assert len(terminal) == 1, (run.friendly_id, _statuses(run))
        run.refresh_from_db()
        assert run.status == terminal[0]


def test_a_queue_limit_holds_across_workers(dev, start_worker, exclusive_payload):
    start_worker(environments=["dev"], concurrency=3, worker_id="w1")
    start_worker(environments=["dev"], concurrency=3, worker_id="w2")
    payload = exclusive_payload(a1=0.15)
    _, runs, _ = batch_trigger(dev, [BatchItem("serial", payload) for _ in range(6)])
    for run in runs:
        assert _finished(run).status == RunStatus.COMPLETED, run.error
    assert not overlapped(payload)  # never two at once in the "serial" queue
    assert [e[1] for e in executions(payload)] == ["start", "end"] * 6


def test_a_paused_queue_holds_its_runs_until_resumed(dev, start_worker):
    start_worker(environments=["dev"])
    Queue.objects.update_or_create(
        environment=dev, name="task/add", defaults={"paused": True}
    )
    run, _ = trigger(dev, "add", {"a": 1, "b": 1})
    time.sleep(1.5)  # rules are reloaded every second: it had its chance
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED
    Queue.objects.filter(environment=dev, name="task/add").update(paused=False)
    assert _finished(run).status == RunStatus.COMPLETED


def test_runs_waiting_for_a_version_run_once_a_worker_brings_the_task(
    dev, start_worker
):
    run, _ = trigger(dev, "add", {"a": 2, "b": 3})
    assert run.status == RunStatus.PENDING_VERSION
    start_worker(environments=["dev"])
    assert _finished(run).status == RunStatus.COMPLETED
    assert _statuses(run)[:2] == ["PENDING_VERSION", "QUEUED"]


def test_a_run_not_started_within_its_ttl_expires(dev, start_worker):
    start_worker(environments=["dev"])
    Queue.objects.update_or_create(
        environment=dev, name="task/add", defaults={"paused": True}
    )
    run, _ = trigger(dev, "add", {"a": 1, "b": 1}, TriggerOptions(ttl="1s"))
    assert _finished(run).status == RunStatus.EXPIRED
    assert run.expired_at and not run.attempts.exists()


def test_a_failed_child_raises_in_its_waiting_parent(dev, start_worker):
    start_worker(environments=["dev"], concurrency=1)
    run, _ = trigger(dev, "careful-parent", {})
    assert _finished(run).status == RunStatus.COMPLETED, run.error
    assert run.output == '{"child_status": "FAILED", "message": "child says no"}'


def test_canceling_a_waiting_parent_cancels_its_child(dev, start_worker):
    worker = start_worker(environments=["dev"], concurrency=2)
    parent, _ = trigger(dev, "waits-forever", {})
    wait_until(lambda: Run.objects.get(pk=parent.pk).status == RunStatus.WAITING)
    child = wait_until(
        lambda: Run.objects.filter(parent=parent, status=RunStatus.EXECUTING).first()
    )
    assert cancel_run(parent)
    assert _finished(parent).status == RunStatus.CANCELED
    assert _finished(child).status == RunStatus.CANCELED
    wait_until(lambda: not worker.active)  # both attempt processes were stopped


def test_an_aborted_run_fails_without_retrying(dev, start_worker):
    start_worker(environments=["dev"])
    run, _ = trigger(dev, "aborts", {})
    assert _finished(run).status == RunStatus.FAILED
    assert (run.attempt_count, run.error["name"]) == (1, "AbortTaskRunError")


def test_an_output_over_the_limit_fails_the_run(dev, start_worker, settings):
    settings.RUNWATCH_OUTPUT_MAX_BYTES = 1000
    start_worker(environments=["dev"])
    run, _ = trigger(dev, "huge-output", {"bytes": 2000})
    assert _finished(run).status == RunStatus.FAILED
    assert run.error["name"] == "OutputTooLarge" and run.attempt_count == 1
    assert run.output is None


def test_log_lines_per_attempt_are_capped(dev, start_worker, settings):
    settings.RUNWATCH_MAX_LOG_LINES_PER_ATTEMPT = 50
    start_worker(environments=["dev"])
    run, _ = trigger(dev, "chatty", {"lines": 400})
    assert _finished(run).status == RunStatus.COMPLETED
    logs = list(
        RunEvent.objects.filter(run=run, kind="log")
        .order_by("id")
        .values_list("message", flat=True)
    )
    assert len(logs) == 51 and "Log limit of 50 lines" in logs[-1]
