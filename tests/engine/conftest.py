"""Real worker processes (`manage.py worker`) against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.conftest import wait_until
from tests.servers import database_url

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    def __init__(self, process: subprocess.Popen, log: Path) -> None:
        self.process = process
        self.log = log

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30) -> None:
        wait_until(lambda: "tasks," in self.output or self.process.poll(), timeout)
        assert self.process.poll() is None, self.output


@pytest.fixture
def worker_process(transactional_db, tmp_path):
    """worker_process("--concurrency", "2", heartbeat_timeout=2) starts `manage.py
    worker` on the test database (tasks of tests.engine.tasks, environment dev) and
    waits until it is ready. Killed at the end of the test."""
    started: list[WorkerProcess] = []

    def _start(*args: str, heartbeat_timeout: int | None = None) -> WorkerProcess:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "SECRET_KEY": "test",
            "RUNWATCH_LOG_LEVEL": "INFO",
        }
        if heartbeat_timeout:
            env["RUNWATCH_HEARTBEAT_TIMEOUT_SECONDS"] = str(heartbeat_timeout)
        log = tmp_path / f"worker-{len(started)}.log"
        command = [sys.executable, "manage.py", "worker", "--env", "dev"]
        command += ["--tasks", "tests.engine.tasks", *args]
        with log.open("w") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        worker = WorkerProcess(process, log)
        started.append(worker)
        worker.wait_ready()
        return worker

    yield _start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
        worker.process.wait(10)
    connection.close()


@pytest.fixture
def exclusive_payload(tmp_path):
    def _payload(**seconds_by_attempt: float) -> dict:
        return {
            "lock": str(tmp_path / "lock"),
            "log": str(tmp_path / "executions.log"),
            "seconds": {k.lstrip("a"): v for k, v in seconds_by_attempt.items()},
        }

    return _payload
