"""Running the demo feed in a loop (the `demo` command and `serve --demo`)."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

from django.db import DatabaseError, close_old_connections

from runs.demo.feed import feed_step
from runs.demo.history import seed_history
from runs.deployments import find_task
from runs.models import Environment, Run

logger = logging.getLogger("runwatch.demo")
FIRST_START_HISTORY = 1_500  # runs over the last week, so the first look is not empty


def demo_tasks_deployed(environment: Environment) -> bool:
    return find_task(environment, "process-order") is not None


def seed_first_start(environment: Environment) -> int:
    """On an environment that has never had a run, load a week of example history."""
    if Run.objects.filter(environment=environment).exists():
        return 0
    seed_history(environment, FIRST_START_HISTORY, days=7)
    return FIRST_START_HISTORY


def run_feed(
    environment: Environment,
    *,
    rate: float = 1.0,
    count: int = 0,
    seed: int | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Trigger demo traffic (about `rate` runs a second) until `count` runs were
    triggered (0: forever) or `stop` is set. Database hiccups are logged, not fatal."""
    rng = random.Random(seed)
    stop = stop or threading.Event()
    triggered = tick = 0
    while not stop.is_set() and (not count or triggered < count):
        try:
            triggered += feed_step(environment, rng, tick)
        except DatabaseError as exc:
            logger.warning("demo feed: %s", exc)
            close_old_connections()
        tick += 1
        if progress:
            progress(triggered)
        stop.wait(rng.uniform(1.0, 3.0) / max(rate, 0.01))
    return triggered


def start_feed_thread(environment: Environment) -> threading.Event:
    """The feed in a daemon thread (serve --demo); set the returned event to stop it."""
    stop = threading.Event()
    threading.Thread(
        target=run_feed,
        args=(environment,),
        kwargs={"stop": stop},
        name="runwatch-demo",
        daemon=True,
    ).start()
    return stop
