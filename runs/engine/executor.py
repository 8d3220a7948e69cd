"""The attempt process: runs task functions for its worker, one attempt at a time.

It never opens a database connection: payloads arrive over the pipe, and metadata,
log lines, triggers and results go back over it (see runs.sdk._RunChannel).

It leads its own process group (so a cancel also kills what the task spawned) and
dies with its worker: a task must never keep running after the worker that holds
its run is gone, or the recovered run would execute twice at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import threading
import time
import traceback

PARENT_CHECK_INTERVAL = 0.25


def executor_main(conn, modules: list[str], worker_pid: int) -> None:
    os.setpgrp()
    # Ctrl-C reaches the whole process group; the worker decides how attempts end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(worker_pid)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    import django

    django.setup()
    from django.conf import settings

    from runs import sdk
    from runs.engine.registry import discover_tasks

    tasks = discover_tasks(modules)
    limit = settings.RUNWATCH_OUTPUT_MAX_BYTES
    _start_flusher(sdk)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        _, info = message
        result = _run_attempt(conn, sdk, tasks, info, limit)
        with sdk.send_lock:
            conn.send(result)


def _die_with(worker_pid: int) -> None:
    """SIGKILL this process when its worker dies: PR_SET_PDEATHSIG covers the
    forkserver parent on Linux; a watcher thread covers everything else."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_INTERVAL)
            try:
                os.kill(worker_pid, 0)
            except ProcessLookupError:
                os._exit(70)
            except PermissionError:
                pass

    threading.Thread(target=watch, daemon=True, name="worker-watch").start()


def _run_attempt(conn, sdk, tasks, info: dict, output_limit: int) -> tuple:
    task = tasks.get(info["task"])
    if task is None:
        return _failure(
            "TaskNotFound", f"Task {info['task']!r} is not registered in this worker"
        )
    ctx = sdk.Context(
        run=sdk.RunInfo(
            id=info["run_id"],
            tags=info["tags"],
            is_test=info["is_test"],
            created_at=info["created_at"],
        ),
        attempt=info["attempt"],
        task=info["task"],
        environment=info["environment"],
        version=info["version"],
        queue=info["queue"],
        machine=info["machine"],
    )
    sdk._enter_run(conn, ctx, info["metadata"])
    try:
        output = task(info["payload"], ctx)
        data = json.dumps(output) if output is not None else None
        if data is not None and len(data.encode()) > output_limit:
            result = _failure(
                "OutputTooLarge",
                f"Output exceeds maximum size of {output_limit} bytes",
            )
        else:
            result = ("done", data)
    except BaseException as exc:  # task code may raise anything, SystemExit included
        result = _failure(type(exc).__name__, str(exc), traceback.format_exc())
    finally:
        try:
            sdk._leave_run()
        except Exception:  # a failed final flush must not lose the result
            traceback.print_exc()
    return result


def _failure(name: str, message: str, stack: str = "") -> tuple:
    return ("failed", {"name": name, "message": message, "stack": stack})


def _start_flusher(sdk) -> None:
    def flush_forever() -> None:
        while True:
            time.sleep(sdk.FLUSH_INTERVAL)
            channel = sdk._channel
            if channel is not None:
                try:
                    channel.flush()
                except (OSError, EOFError):
                    return

    threading.Thread(target=flush_forever, daemon=True, name="metadata-flusher").start()
