"""Shared fixtures: personas and plain factory callables (no factory library)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from runs.deployments import TaskSpec, register_tasks
from runs.environments import ensure_default_environments
from runs.models import Environment
from runs.triggering import TriggerOptions, trigger
from tests.servers import (  # noqa: F401 (fixtures: real server processes)
    daphne_on_uvloop,
    manage_py_serve,
    uvicorn,
)


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing():
    """The default PBKDF2 hasher costs about a second per persona on a small machine.
    Set once for the session, before the live server forks, so that browser tests
    sign in against the same hasher."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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


# --- live server and browser (browser, SDK and cross-process tests) -----------------


def _server_application():
    from channels.routing import get_default_application
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    return ASGIStaticFilesHandler(get_default_application())


def _after_fork(django_db_blocker) -> None:
    """In the forked server: lift the database blocker, and replace asgiref's
    thread-sensitive executor, whose worker thread (started by async tests that ran
    before the fork) does not exist in the child; work sent to it would never run."""
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import SyncToAsync

    SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)
    django_db_blocker.unblock()


@pytest.fixture(scope="session")
def live_url(django_db_setup, django_db_blocker):
    """A daphne process on uvloop serving dashboard.asgi against the test database, as
    `manage.py serve --no-worker` would. Yields its base URL (http://127.0.0.1:<port>).
    Use with `transactional_db` (or `django_db(transaction=True)`) so that what a test
    writes is committed and visible to the server."""
    import asyncio

    import uvloop
    from daphne.testing import DaphneProcess
    from django.db import connections

    with django_db_blocker.unblock():
        connections.close_all()  # the forked server must not share our sockets
    # The forked server inherits pytest-django's database blocker: lift it there.
    server = DaphneProcess(
        "127.0.0.1",
        _server_application,
        setup=lambda: _after_fork(django_db_blocker),
    )
    server.daemon = True
    # The forked child makes daphne's loop from the policy it inherits (as
    # dashboard.server does); the tests in this process keep asyncio's.
    policy = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        server.start()
    finally:
        asyncio.set_event_loop_policy(policy)
    if not server.ready.wait(30):
        raise RuntimeError("live server did not start")
    yield f"http://127.0.0.1:{server.port.value}"
    server.terminate()
    server.join(10)


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (never `playwright install`). Module-scoped:
    Playwright's sync API keeps an event loop running in this thread while it lives,
    which would break the asyncio tests (websockets) collected after the browser tests."""
    import os

    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; the ORM calls
    # of test code and fixtures are still plain synchronous calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


def sign_in(page, live_url: str, username: str, password: str) -> None:
    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
