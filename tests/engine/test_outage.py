"""A worker whose database goes away mid-run (PostgreSQL restart, failover): to the
worker that is every connection dropped and new ones refused for a while. The test
does exactly that to its own test database only."""

from __future__ import annotations

import contextlib
import time

import psycopg
import pytest
from django.db import connection

from runs.models import Run, RunEvent
from runs.statuses import RunStatus
from runs.triggering import trigger
from tests.conftest import wait_until
from tests.engine.checks import (
    alive,
    executions,
    finished,
    overlapped,
    started,
    status_of,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

S = RunStatus


@contextlib.contextmanager
def database_down():
    """Refuse new connections to the test database and drop the open ones."""
    db = connection.settings_dict
    name = db["NAME"]
    connection.close()
    admin = psycopg.connect(
        dbname="postgres",
        user=db["USER"],
        password=db["PASSWORD"] or None,
        host=db["HOST"],
        port=db["PORT"] or None,
        autocommit=True,
    )
    try:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        yield
    finally:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()
        connection.close()


def test_a_short_outage_delays_writes_but_loses_nothing(dev, worker_process):
    worker = worker_process("--concurrency", "2")
    run, _ = trigger(dev, "reporter", {"steps": 30})
    wait_until(lambda: status_of(run) == S.EXECUTING)
    with database_down():
        time.sleep(2.5)  # the task keeps reporting into the worker's memory
    run = finished(run)
    assert run.status == S.COMPLETED and run.attempt_count == 1
    assert run.metadata == {"step": 30}
    steps = list(
        RunEvent.objects.filter(run=run, kind="log").values_list(
            "attributes__n", flat=True
        )
    )
    assert steps == list(range(1, 31))  # every log line, in order

    # It listens again: a new run starts without waiting for a poll.
    after, _ = trigger(dev, "noop", {})
    assert finished(after, timeout=10).status == S.COMPLETED
    assert "database is back" in worker.output


def test_an_outage_longer_than_the_lease_stops_the_attempt_before_anyone_retries_it(
    dev, worker_process, exclusive_payload
):
    worker_process("--concurrency", "1", heartbeat_timeout=3)
    payload = exclusive_payload(a1=30, a2=0.1)
    run, _ = trigger(dev, "exclusive", payload)
    pid = int(started(payload)[0])
    with database_down():
        # The lease guard stops the attempt within 0.6 × the heartbeat timeout,
        # while the database is still unreachable.
        wait_until(lambda: not alive(pid), timeout=3)
        time.sleep(1.5)  # past the heartbeat timeout: the run is fair game now
    run = finished(run)
    assert (run.status, run.attempt_count) == (S.COMPLETED, 2)
    assert list(run.attempts.values_list("status", flat=True)) == [
        "INTERRUPTED",
        "COMPLETED",
    ]
    assert [e[1] for e in executions(payload)] == ["start", "start", "end"]
    assert not overlapped(payload)
    assert Run.objects.get(pk=run.pk).worker_id == ""
