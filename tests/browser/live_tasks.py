"""Tasks the live browser tests run: slow enough that a person (and the test) can
watch each state and progress step arrive."""

from __future__ import annotations

import time

from runs.sdk import metadata, task


@task(id="slow-progress")
def slow_progress(payload, ctx):
    steps = int(payload.get("steps", 4))
    for step in range(1, steps + 1):
        time.sleep(float(payload.get("pause", 0.4)))
        metadata.set("progress", step / steps)
        metadata.flush()
    return {"steps": steps}
