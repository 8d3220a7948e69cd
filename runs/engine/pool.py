"""The worker's attempt processes.

Each process is long-lived and runs one attempt at a time; it is killed (SIGKILL) to
cancel or time out a run, or dies with the task's crash, and is replaced on demand.
Processes come from a forkserver preloaded with Django and the task modules, so a
replacement is ready in milliseconds and never inherits the worker's DB connections
or threads.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from dataclasses import dataclass, field
from typing import Any

from runs.engine.executor import executor_main

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["runs.engine.preload"])


@dataclass(eq=False)
class Executor:
    process: Any
    conn: Any
    lifeline: Any  # never written: closing it (or dying) ends the process
    busy: bool = False

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the attempt process and everything the task started (its group)."""
        kill_group(self.pid)
        self.process.join(timeout=2)
        self.close()

    def close(self) -> None:
        for end in (self.conn, self.lifeline):
            with contextlib.suppress(OSError):
                end.close()

    def exit_code(self) -> int | None:
        self.process.join(timeout=1)
        return self.process.exitcode


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        # Not (yet) a group leader: the process itself.
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.kill(pid, signal.SIGKILL)

    def exit_code(self) -> int | None:
        self.process.join(timeout=1)
        return self.process.exitcode


@dataclass
class Pool:
    """Idle executors ready to take an attempt; busy ones are held by the worker."""

    modules: list[str]
    idle: list[Executor] = field(default_factory=list)

    def spawn(self) -> Executor:
        parent_conn, child_conn = _context.Pipe()
        lifeline_read, lifeline_write = _context.Pipe(duplex=False)
        process = _context.Process(
            target=executor_main,
            args=(child_conn, self.modules, lifeline_read),
            daemon=True,
            name="runwatch-attempt",
        )
        process.start()
        child_conn.close()
        lifeline_read.close()
        return Executor(process=process, conn=parent_conn, lifeline=lifeline_write)

    def prefill(self, count: int) -> None:
        while len(self.idle) < count:
            self.idle.append(self.spawn())

    def take(self) -> Executor:
        while self.idle:
            executor = self.idle.pop()
            if executor.alive:
                executor.busy = True
                return executor
            executor.close()
        executor = self.spawn()
        executor.busy = True
        return executor

    def give_back(self, executor: Executor) -> None:
        executor.busy = False
        self.idle.append(executor)

    def close(self) -> None:
        for executor in self.idle:
            with contextlib.suppress(OSError, ValueError):
                executor.conn.send(("stop",))
        for executor in self.idle:
            executor.process.join(timeout=1)
            if executor.process.is_alive():
                executor.kill()
            else:
                executor.close()
        self.idle.clear()
