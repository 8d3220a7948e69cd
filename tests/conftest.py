"""Shared fixtures: personas and plain factory callables (no factory library)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from runs.deployments import TaskSpec, register_tasks
from runs.environments import ensure_default_environments
from runs.models import Environment
from runs.triggering import TriggerOptions, trigger


@pytest.fixture
def envs(db) -> dict[str, Environment]:
    return {env.slug: env for env in ensure_default_environments()}


@pytest.fixture
def dev(envs) -> Environment:
    return envs["dev"]


@pytest.fixture
def prod(envs) -> Environment:
    return envs["prod"]


@pytest.fixture
def alice(db):
    """A superuser: sees every environment."""
    return get_user_model().objects.create_superuser(
        "alice", "alice@example.com", "alice-password"
    )


@pytest.fixture
def bob(db, envs):
    """An operator with access to dev only."""
    user = get_user_model().objects.create_user(
        "bob", "bob@example.com", "bob-password"
    )
    envs["dev"].members.add(user)
    return user


@pytest.fixture
def deploy():
    """deploy(env, "task-a", "task-b", ...) registers those tasks as the current deployment."""

    def _deploy(environment, *slugs, **spec_overrides):
        specs = [
            TaskSpec(
                slug=s,
                module="tests.fake_tasks",
                function=s.replace("-", "_"),
                **spec_overrides,
            )
            for s in slugs
        ]
        return register_tasks(environment, specs)

    return _deploy


@pytest.fixture
def make_run(deploy):
    """make_run(env, task="hello", payload={...}, **TriggerOptions fields) → Run."""

    def _make_run(environment, task: str = "hello-world", payload=None, **options):
        from runs.deployments import find_task

        if find_task(environment, task) is None and not options.pop(
            "undeployed", False
        ):
            deploy(environment, task)
        run, _ = trigger(
            environment,
            task,
            payload if payload is not None else {"n": 1},
            TriggerOptions(**options),
        )
        return run

    return _make_run


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    if settings.IS_POSTGRES:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def start_worker(transactional_db):
    """start_worker(concurrency=2, environments=["dev"]) runs a Worker in a thread
    (executing tests.engine.tasks) until the test ends."""
    import threading

    from runs.engine.worker import Worker

    started = []

    def _start(**kwargs):
        kwargs.setdefault("modules", ["tests.engine.tasks"])
        kwargs.setdefault("concurrency", 2)
        worker = Worker(**kwargs)
        thread = threading.Thread(target=worker.run, daemon=True, name="test-worker")
        thread.start()
        assert worker.ready.wait(30), "worker did not start"
        started.append((worker, thread))
        return worker

    yield _start
    for worker, thread in started:
        worker.stop()
        thread.join(15)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll `predicate` until it returns a truthy value; fail after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
