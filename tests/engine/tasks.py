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
