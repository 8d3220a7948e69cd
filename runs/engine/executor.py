"""The attempt process: runs task functions for its worker, one attempt at a time.

It never opens a database connection: payloads arrive over the pipe, and metadata,
log lines, triggers and results go back over it (see runs.sdk._RunChannel).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import traceback


def executor_main(conn, modules: list[str]) -> None:
    # Ctrl-C reaches the whole process group; the worker decides how attempts end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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
        conn.send(_run_attempt(conn, sdk, tasks, info))


def _run_attempt(conn, sdk, tasks, info: dict) -> tuple:
    task = tasks.get(info["task"])
    if task is None:
        return (
            "failed",
            {
                "name": "TaskNotFound",
                "message": f"Task {info['task']!r} is not registered in this worker",
                "stack": "",
            },
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
        result = (
            "failed",
            {
                "name": type(exc).__name__,
                "message": str(exc),
                "stack": traceback.format_exc(),
            },
        )
    finally:
        try:
            sdk._leave_run()
        except Exception:  # a failed final flush must not lose the result
            traceback.print_exc()
    return result


def _start_flusher(sdk) -> None:
    def flush_forever() -> None:
        import time

        while True:
            time.sleep(sdk.FLUSH_INTERVAL)
            channel = sdk._channel
            if channel is not None:
                try:
                    channel.flush()
                except (OSError, EOFError):
                    return

    threading.Thread(target=flush_forever, daemon=True, name="metadata-flusher").start()
