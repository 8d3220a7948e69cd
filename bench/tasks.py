"""Tasks for the benchmarks (run by `manage.py worker --tasks bench.tasks`)."""

from __future__ import annotations

import time

from runs.sdk import task


@task(id="bench-noop", queue="bench")
def bench_noop(payload, ctx):
    return None


@task(id="bench-clock", queue="bench-clock")
def bench_clock(payload, ctx):
    """Returns when task code started, for enqueue→start latency."""
    return {"t": time.time()}
