"""Tasks the engine tests run (imported by the worker and its attempt processes)."""

from __future__ import annotations

import os
import time

from runs.sdk import logger, metadata, task


@task(id="noop")
def noop(payload, ctx):
    return None


@task(id="add")
def add(payload, ctx):
    logger.info("adding", a=payload["a"], b=payload["b"])
    return {"sum": payload["a"] + payload["b"], "attempt": ctx.attempt}


@task(
    id="flaky",
    retry={
        "maxAttempts": 3,
        "minTimeoutInMs": 50,
        "maxTimeoutInMs": 100,
        "factor": 2,
        "randomize": False,
    },
)
def flaky(payload, ctx):
    if ctx.attempt < payload["succeed_on"]:
        raise RuntimeError(f"attempt {ctx.attempt} fails")
    return {"attempt": ctx.attempt}


@task(id="crash")
def crash(payload, ctx):
    os._exit(3)


@task(id="spin")
def spin(payload, ctx):
    while True:  # a CPU-bound loop that never yields
        pass


@task(id="sleepy", max_duration=1)
def sleepy(payload, ctx):
    time.sleep(30)


@task(id="progress")
def progress(payload, ctx):
    for step in range(1, 5):
        metadata.set("progress", step / 4).append("steps", step)
        metadata.flush()
    metadata.increment("count", 2)
    logger.warn("almost done", step=4)
    return metadata.current()


@task(id="child")
def child(payload, ctx):
    metadata.parent.increment("children_done", 1)
    return {"double": payload["n"] * 2}


@task(id="parent")
def parent(payload, ctx):
    first = child.trigger_and_wait({"n": payload["n"]})
    handles = child.batch_trigger([{"n": 1}, {"n": 2}])
    return {"child": first, "batched": len(handles)}


@task(id="oversize")
def oversize(payload, ctx):
    metadata.set("blob", "x" * 300_000)


@task(
    id="exclusive", retry={"max_attempts": 3, "min_timeout_ms": 50, "randomize": False}
)
def exclusive(payload, ctx):
    """Holds a file lock while it runs: a second execution at the same time fails to
    take it and leaves an OVERLAP marker. Appends "start"/"end" lines to a log."""
    import fcntl

    seconds = payload["seconds"].get(str(ctx.attempt), 0.05)
    with open(payload["lock"], "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with open(payload["lock"] + ".OVERLAP", "a") as marker:
                marker.write(f"{ctx.run.id} attempt {ctx.attempt}\n")
            raise
        _note(payload["log"], f"{os.getpid()} start {ctx.run.id} {ctx.attempt}")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            logger.info("tick")
            time.sleep(0.1)
        _note(payload["log"], f"{os.getpid()} end {ctx.run.id} {ctx.attempt}")
    return {"attempt": ctx.attempt}


def _note(path: str, line: str) -> None:
    with open(path, "a") as log:
        log.write(line + "\n")


@task(id="record")
def record(payload, ctx):
    """Notes its run, then takes `seconds` (default none)."""
    _note(payload["log"], ctx.run.id)
    time.sleep(payload.get("seconds", 0))


@task(id="serial", queue="serial", queue_concurrency_limit=1)
def serial(payload, ctx):
    return exclusive(payload, ctx)


@task(id="reporter")
def reporter(payload, ctx):
    """Reports progress through metadata and logs for `steps` × 0.1 s."""
    for step in range(1, payload["steps"] + 1):
        metadata.set("step", step)
        logger.info("step", n=step)
        time.sleep(0.1)
    return {"steps": payload["steps"]}


@task(id="failing-child", retry={"max_attempts": 1})
def failing_child(payload, ctx):
    raise ValueError("child says no")


@task(id="careful-parent", retry={"max_attempts": 1})
def careful_parent(payload, ctx):
    from runs.sdk import TaskRunFailed

    try:
        failing_child.trigger_and_wait({})
    except TaskRunFailed as exc:
        return {"child_status": exc.status, "message": exc.error["message"]}
    return {"child_status": "COMPLETED"}


@task(id="waits-forever")
def waits_forever(payload, ctx):
    spin.trigger_and_wait({})


@task(id="aborts")
def aborts(payload, ctx):
    from runs.sdk import AbortTaskRunError

    raise AbortTaskRunError("this payload can never work")


@task(id="huge-output")
def huge_output(payload, ctx):
    return "x" * payload["bytes"]


@task(id="chatty")
def chatty(payload, ctx):
    for i in range(payload["lines"]):
        logger.debug("line", i=i)
