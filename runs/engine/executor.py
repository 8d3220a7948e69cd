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


def executor_main(conn, modules: list[str], lifeline) -> None:
    os.setpgrp()
    # Ctrl-C reaches the whole process group; the worker decides how attempts end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_worker(lifeline)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    import django

    django.setup()
    from runs import sdk
    from runs.engine.registry import discover_tasks

    tasks = discover_tasks(modules)
    _start_flusher(sdk)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        _, info = message
        result = _run_attempt(conn, sdk, tasks, info)
        with sdk.send_lock:
            conn.send(result)


def _die_with_worker(lifeline) -> None:
    """Exit at once when the worker dies. `lifeline` is the read end of a pipe whose
    only write end the worker holds: it reads EOF the moment the worker is gone (a
    zombie included, which a pid probe would take for alive). The parent of this
    process is the forkserver, so PR_SET_PDEATHSIG covers the forkserver dying."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            lifeline.recv()
        os._exit(70)

    threading.Thread(target=watch, daemon=True, name="worker-lifeline").start()


def _run_attempt(conn, sdk, tasks, info: dict) -> tuple:
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
        result = ("done", json.dumps(output) if output is not None else None)
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
