"""`manage.py serve`: the embedded all-in-one.

Migrates, creates the environments (and an `admin` user on a fresh install), then
runs daphne with a worker and the scheduler in the same process; `--demo` adds the
demo tasks and a feed of demo runs.
"""

from __future__ import annotations

import os
import random
import secrets
import threading
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from runs.environments import ensure_default_environments

DEMO_MODULE = "runs.demo.tasks"


class Command(BaseCommand):
    help = "Run Runwatch in one process: web server (daphne) + worker + scheduler."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--concurrency",
            type=int,
            default=4,
            help="attempts the embedded worker runs at once",
        )
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="web server only (run `manage.py worker` elsewhere)",
        )
        parser.add_argument(
            "--demo",
            action="store_true",
            help="execute the demo tasks and keep triggering demo runs",
        )

    def handle(self, *args, host, port, concurrency, no_worker, demo, **options):
        call_command("migrate", interactive=False, verbosity=0)
        envs = {env.slug: env for env in ensure_default_environments()}
        self._ensure_admin()
        worker = None if no_worker else self._start_worker(concurrency, demo)
        if demo:
            self._start_demo_feed(envs["dev"])
        self.stdout.write(
            f"\nRunwatch is up: http://{host}:{port}/\n"
            f"  dev API key: {envs['dev'].api_key}\n"
            f"  database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"
            f"{'' if worker else ' (no embedded worker)'}\n"
        )
        try:
            self._run_daphne(host, port)
        finally:
            if worker is not None:
                worker.stop()

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

    def _start_worker(self, concurrency: int, demo: bool):
        from runs.engine.worker import Worker

        worker = Worker(concurrency=concurrency, modules=[DEMO_MODULE] if demo else [])
        threading.Thread(target=worker.run, name="runwatch-worker", daemon=True).start()
        worker.ready.wait(60)
        return worker

    def _start_demo_feed(self, environment) -> None:
        from runs.demo.feed import trigger_demo_runs

        def feed() -> None:
            rng = random.Random()
            while True:
                try:
                    trigger_demo_runs(environment, rng.choice([1, 1, 2, 4]), rng)
                except Exception as exc:  # keep the feed alive through DB hiccups
                    self.stderr.write(f"demo feed: {exc}")
                time.sleep(rng.uniform(1.0, 3.0))

        threading.Thread(target=feed, name="runwatch-demo", daemon=True).start()

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
