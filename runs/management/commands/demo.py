"""`manage.py demo`: keep triggering demo runs so the dashboard has live traffic."""

from __future__ import annotations

import random
import time

from django.core.management.base import BaseCommand, CommandError

from runs.demo.feed import trigger_demo_runs
from runs.environments import ensure_default_environments
from runs.models import Environment


class Command(BaseCommand):
    help = "Trigger a varied stream of demo runs (execute them with `serve --demo` or `worker --demo`)."

    def add_arguments(self, parser):
        parser.add_argument("--env", default="dev")
        parser.add_argument(
            "--rate", type=float, default=1.0, help="runs per second (default 1)"
        )
        parser.add_argument(
            "--count",
            type=int,
            default=0,
            help="stop after this many runs (default: never)",
        )
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, env, rate, count, seed, **options):
        ensure_default_environments()
        environment = Environment.objects.filter(slug=env).first()
        if environment is None:
            raise CommandError(f"No environment {env!r}")
        rng = random.Random(seed)
        triggered = 0
        try:
            while not count or triggered < count:
                size = (
                    min(rng.choice([1, 1, 1, 2, 5]), count - triggered)
                    if count
                    else rng.choice([1, 1, 1, 2, 5])
                )
                triggered += trigger_demo_runs(environment, size, rng)
                self.stdout.write(f"triggered {triggered} demo runs", ending="\r")
                time.sleep(size / max(rate, 0.01))
        except KeyboardInterrupt:
            pass
        self.stdout.write(f"\ntriggered {triggered} demo runs into {env}")
