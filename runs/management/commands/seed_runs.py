"""`manage.py seed_runs --count N --env dev`: bulk-load realistic historical runs.

Finished runs of the demo tasks spread over the last 30 days (denser recently), with
attempts, status history, tags, errors and outputs; loaded with COPY on PostgreSQL
(a million runs in a few minutes) and one executemany per chunk on SQLite.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from runs.demo.history import seed_history
from runs.environments import ensure_default_environments
from runs.models import Environment


class Command(BaseCommand):
    help = "Bulk-load N finished historical runs into an environment."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--env", default="dev")
        parser.add_argument(
            "--days", type=float, default=30, help="spread over this many days"
        )
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, count, env, days, seed, **options):
        if count < 1:
            raise CommandError("--count must be at least 1")
        if days <= 0:
            raise CommandError("--days must be positive")
        ensure_default_environments()
        environment = Environment.objects.filter(slug=env).first()
        if environment is None:
            slugs = ", ".join(Environment.objects.values_list("slug", flat=True))
            raise CommandError(f"No environment {env!r} (have: {slugs})")
        started = time.monotonic()

        def progress(done: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-6)
            self.stdout.write(f"{done}/{count} runs ({rate:,.0f} runs/s)", ending="\r")
            self.stdout.flush()

        seed_history(environment, count, days=days, seed=seed, progress=progress)
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"\nseeded {count} runs into {env} in {elapsed:.1f}s "
            f"({count / elapsed:,.0f} runs/s)"
        )
