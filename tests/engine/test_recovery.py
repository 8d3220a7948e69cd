"""Workers that die, stop or lose their database: runs are recovered, never lost, and
never execute twice at once (the `exclusive` task proves it with a file lock)."""

from __future__ import annotations

import signal
import time

import pytest

from runs.models import Attempt, Batch, Run
from runs.statuses import RunStatus
from runs.triggering import BatchItem, TriggerOptions, batch_trigger, trigger
from tests.conftest import wait_until
from tests.engine.checks import (
    alive,
    executions,
    finished,
    overlapped,
    started,
    status_of,
)

pytestmark = pytest.mark.django_db(transaction=True)

S = RunStatus


def test_a_killed_workers_run_is_recovered_and_executed_once_at_a_time(
    dev, worker_process, exclusive_payload, settings
):
    settings.RUNWATCH_HEARTBEAT_TIMEOUT_SECONDS = 2
    first = worker_process("--concurrency", "1", heartbeat_timeout=2)
    payload = exclusive_payload(a1=30, a2=0.2)
    run, _ = trigger(dev, "exclusive", payload)
    pid = int(started(payload)[0])

    first.process.send_signal(signal.SIGKILL)
    # The attempt process dies with its worker: nothing keeps executing the run.
    wait_until(lambda: not alive(pid), timeout=2)
    assert status_of(run) == S.EXECUTING  # until the heartbeat times out

    worker_process("--concurrency", "1", heartbeat_timeout=2)
    assert finished(run).status == S.COMPLETED
    assert run.attempt_count == 2 and run.output == '{"attempt": 2}'
    attempts = list(run.attempts.values_list("number", "status", "error__name"))
    assert attempts == [(1, "CRASHED", "WorkerLost"), (2, "COMPLETED", None)]
    assert [e[1:] for e in executions(payload)] == [
        ["start", run.friendly_id, "1"],
        ["start", run.friendly_id, "2"],
        ["end", run.friendly_id, "2"],
    ]
    assert not overlapped(payload)


def test_a_killed_workers_run_without_attempts_left_is_crashed(
    dev, worker_process, exclusive_payload, settings
):
    settings.RUNWATCH_HEARTBEAT_TIMEOUT_SECONDS = 2
    first = worker_process("--concurrency", "1", heartbeat_timeout=2)
    payload = exclusive_payload(a1=30)
    run, _ = trigger(dev, "exclusive", payload, TriggerOptions(max_attempts=1))
    started(payload)
    first.process.kill()
    worker_process("--concurrency", "1", heartbeat_timeout=2)
    run = finished(run)
    assert (run.status, run.error["name"], run.attempt_count) == (
        S.CRASHED,
        "WorkerLost",
        1,
    )
    assert len(executions(payload)) == 1


def test_a_stopping_worker_lets_running_attempts_finish(
    dev, worker_process, exclusive_payload
):
    worker = worker_process("--concurrency", "2", "--shutdown-grace", "20")
    payload = exclusive_payload(a1=1.0)
    run, _ = trigger(dev, "exclusive", payload)
    started(payload)
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(20) == 0
    run.refresh_from_db()
    assert (run.status, run.attempt_count) == (S.COMPLETED, 1)


def test_a_stopping_worker_requeues_what_outlasts_its_grace(
    dev, worker_process, exclusive_payload
):
    worker = worker_process("--concurrency", "1", "--shutdown-grace", "0.3")
    payload = exclusive_payload(a1=30, a2=0.1)
    run, _ = trigger(dev, "exclusive", payload)
    pid = int(started(payload)[0])
    stopped_at = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(20) == 0
    assert time.monotonic() - stopped_at < 5
    assert not alive(pid)
    run.refresh_from_db()
    assert (run.status, run.worker_id) == (S.QUEUED, "")
    assert run.attempts.get().status == "INTERRUPTED"

    worker_process("--concurrency", "1")  # a restarted worker picks it up
    assert finished(run).status == S.COMPLETED and run.attempt_count == 2
    assert not overlapped(payload)


def test_two_worker_processes_execute_each_run_exactly_once(
    dev, worker_process, tmp_path
):
    log = tmp_path / "record.log"
    worker_process("--concurrency", "4")
    worker_process("--concurrency", "4")
    # 20 ms each: one worker alone would need 1.5 s, many times the other's 0.1 s
    # poll on SQLite (on a busy machine an instant task let one worker take them all)
    item = {"log": str(log), "seconds": 0.02}
    batch, runs, _ = batch_trigger(dev, [BatchItem("record", item) for _ in range(300)])
    wait_until(
        lambda: (
            not Run.objects.filter(batch=batch).exclude(status=S.COMPLETED).exists()
        ),
        timeout=60,
    )
    recorded = log.read_text().split()
    assert sorted(recorded) == sorted(r.friendly_id for r in runs)
    assert set(
        Attempt.objects.filter(run__batch=batch).values_list("number", flat=True)
    ) == {1}
    workers = set(
        Attempt.objects.filter(run__batch=batch).values_list("worker_id", flat=True)
    )
    assert len(workers) == 2, "both workers should have taken a share"
    wait_until(lambda: Batch.objects.get(pk=batch.pk).status == "COMPLETED")
