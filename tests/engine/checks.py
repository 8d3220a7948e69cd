"""What the engine tests look at: the `exclusive` task's execution log, processes, runs."""

from __future__ import annotations

import os

from runs.models import Run
from runs.statuses import FINISHED
from tests.conftest import wait_until


def executions(payload: dict) -> list[list[str]]:
    try:
        with open(payload["log"]) as log:
            return [line.split() for line in log]
    except FileNotFoundError:
        return []


def overlapped(payload: dict) -> bool:
    return os.path.exists(payload["lock"] + ".OVERLAP")


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped by its dead parent's reaper is not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone, or exiting as we read
        return False


def status_of(run: Run) -> str:
    return Run.objects.values_list("status", flat=True).get(pk=run.pk)


def finished(run: Run, timeout: float = 30) -> Run:
    wait_until(lambda: status_of(run) in FINISHED, timeout)
    run.refresh_from_db()
    return run


def started(payload: dict, count: int = 1) -> list[str]:
    """Wait until `count` executions have started; returns the last start line."""
    wait_until(
        lambda: sum(1 for e in executions(payload) if e[1] == "start") >= count, 20
    )
    return [e for e in executions(payload) if e[1] == "start"][-1]
