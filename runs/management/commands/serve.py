"""`manage.py serve`: the embedded all-in-one.

Migrates, creates the environments (and an `admin` user on a fresh install), then
runs daphne (on uvloop: manage.py chooses it for this command, as dashboard.server
does) with a worker and the scheduler in the same process; `--demo` adds the
demo tasks, a week of example history on first start and a feed of demo runs.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from runs.environments import ensure_default_environments

DEMO_MODULE = "runs.demo.tasks"
SHUTDOWN_GRACE = 3.0  # seconds running attempts get on Ctrl-C before being requeued


class Command(BaseCommand):
    help = "Run Runwatch in one process: web server (daphne) + worker + scheduler."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--concurrency",
            type=int,
            default=None,
            help="attempts the embedded worker runs at once (default 4, 8 with --demo)",
        )
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="web server only (run `manage.py worker` elsewhere)",
        )
        parser.add_argument(
            "--demo",
            action="store_true",
            help="execute the demo tasks, load example history on first start and "
            "keep triggering demo runs",
        )

    def handle(self, *args, host, port, concurrency, no_worker, demo, **options):
        call_command("migrate", interactive=False, verbosity=0)
        envs = {env.slug: env for env in ensure_default_environments()}
        self._ensure_admin()
        if demo:
            self._seed_history(envs["dev"])
        concurrency = concurrency or (8 if demo else 4)
        worker = None if no_worker else self._start_worker(concurrency, demo)
        stop_feed = self._start_feed(envs["dev"]) if demo else None
        self.stdout.write(
            f"\nRunwatch is up: http://{host}:{port}/\n"
            f"  dev API key: {envs['dev'].api_key}\n"
            f"  database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"
            f"{'' if worker else ' (no embedded worker)'}\n"
            f"  server: daphne on {_loop_name()}\n"
        )
        try:
            self._run_daphne(host, port)
        finally:
            if stop_feed is not None:
                stop_feed.set()
            if worker is not None:
                self._stop_worker(*worker)

    def _ensure_admin(self) -> None:
        users = get_user_model().objects
        if users.exists():
            return
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD") or secrets.token_urlsafe(
            12
        )
        users.create_superuser("admin", "admin@localhost", password)
        self.stdout.write(
            self.style.SUCCESS(f"Created user 'admin' with password: {password}")
        )

    def _seed_history(self, environment) -> None:
        from runs.demo.traffic import seed_first_start

        seeded = seed_first_start(environment)
        if seeded:
            self.stdout.write(f"Loaded {seeded} example runs from the past week")

    def _start_worker(self, concurrency: int, demo: bool):
        from runs.engine.worker import Worker

        worker = Worker(concurrency=concurrency, modules=[DEMO_MODULE] if demo else [])
        thread = threading.Thread(
            target=worker.run, name="runwatch-worker", daemon=True
        )
        thread.start()
        worker.ready.wait(60)
        return worker, thread

    def _stop_worker(self, worker, thread: threading.Thread) -> None:
        self.stdout.write("Stopping the worker (running attempts are requeued)…")
        worker.stop(grace=SHUTDOWN_GRACE)
        thread.join(SHUTDOWN_GRACE + 10)

    def _start_feed(self, environment) -> threading.Event:
        from runs.demo.traffic import start_feed_thread

        return start_feed_thread(environment)

    def _run_daphne(self, host: str, port: int) -> None:
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        from dashboard.asgi import application

        Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            signal_handlers=True,
            verbosity=0,
        ).run()


def _loop_name() -> str:
    """uvloop where manage.py chose it (dashboard.server.use_uvloop), else asyncio."""
    policy = type(asyncio.get_event_loop_policy())
    return "uvloop" if policy.__module__.startswith("uvloop") else "asyncio"
