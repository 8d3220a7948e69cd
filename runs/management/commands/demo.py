"""`manage.py demo`: keep triggering demo runs so the dashboard has live traffic."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from runs.demo.traffic import demo_tasks_deployed, run_feed
from runs.environments import ensure_default_environments
from runs.models import Environment


class Command(BaseCommand):
    help = (
        "Trigger a varied stream of demo runs (executed by `serve --demo` or "
        "`worker --demo`)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--env", default="dev")
        parser.add_argument(
            "--rate", type=float, default=1.0, help="about this many runs a second"
        )
        parser.add_argument(
            "--count", type=int, default=0, help="stop after this many runs"
        )
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, env, rate, count, seed, **options):
        if rate <= 0:
            raise CommandError("--rate must be positive")
        ensure_default_environments()
        environment = Environment.objects.filter(slug=env).first()
        if environment is None:
            slugs = ", ".join(Environment.objects.values_list("slug", flat=True))
            raise CommandError(f"No environment {env!r} (have: {slugs})")
        if not demo_tasks_deployed(environment):
            self.stderr.write(
                self.style.WARNING(
                    f"No worker has registered the demo tasks in {env} yet: runs wait "
                    "as PENDING_VERSION until one does (start `manage.py worker "
                    "--demo` or `manage.py serve --demo`)."
                )
            )

        def progress(triggered: int) -> None:
            self.stdout.write(f"triggered {triggered} demo runs", ending="\r")
            self.stdout.flush()

        try:
            triggered = run_feed(
                environment, rate=rate, count=count, seed=seed, progress=progress
            )
        except KeyboardInterrupt:
            triggered = None
        done = "" if triggered is None else f" ({triggered} runs)"
        self.stdout.write(f"\ndemo feed into {env} stopped{done}")
