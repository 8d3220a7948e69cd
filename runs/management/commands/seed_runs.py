"""`manage.py seed_runs --count N --env dev`: bulk-load realistic historical runs.

Finished runs spread over the last 30 days (weighted to recent), with the demo
tasks' names, tags, payloads, outputs and errors, for exploring filters and for
benchmarks. Set-based: chunks of bulk INSERTs for runs and their tag rows.
"""

from __future__ import annotations

import json
import random
import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from runs.environments import ensure_default_environments
from runs.models import Deployment, Environment, Run, RunTag
from runs.statuses import RunStatus
from runs.triggering import reserve_run_numbers

TASKS = {
    "process-order": "orders",
    "send-email": "task/send-email",
    "email-campaign": "task/email-campaign",
    "charge-card": "task/charge-card",
    "fraud-check": "task/fraud-check",
    "sync-inventory": "inventory",
    "resize-image": "task/resize-image",
    "generate-report": "task/generate-report",
}
OUTCOMES = [
    (RunStatus.COMPLETED, 82),
    (RunStatus.FAILED, 8),
    (RunStatus.CANCELED, 4),
    (RunStatus.CRASHED, 2),
    (RunStatus.EXPIRED, 2),
    (RunStatus.TIMED_OUT, 1),
    (RunStatus.SYSTEM_FAILURE, 1),
]
ERRORS = {
    RunStatus.FAILED: ("RuntimeError", "Upstream API returned 503"),
    RunStatus.CRASHED: ("TaskProcessExited", "The task process killed by signal 9"),
    RunStatus.TIMED_OUT: (
        "MaxDurationExceededError",
        "Run exceeded maximum compute time (maxDuration) of 300 seconds",
    ),
    RunStatus.SYSTEM_FAILURE: (
        "SystemFailure",
        "The worker lost its database connection",
    ),
}
CUSTOMERS = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "wonka",
]
CHUNK = 2000


class Command(BaseCommand):
    help = "Bulk-load N finished historical runs into an environment."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--env", default="dev")
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, count, env, days, seed, **options):
        if count < 1:
            raise CommandError("--count must be at least 1")
        ensure_default_environments()
        environment = Environment.objects.filter(slug=env).first()
        if environment is None:
            raise CommandError(f"No environment {env!r}")
        rng = random.Random(seed)
        versions = list(
            Deployment.objects.filter(environment=environment).values_list(
                "version", flat=True
            )
        ) or [""]
        started = time.monotonic()
        done = 0
        while done < count:
            size = min(CHUNK, count - done)
            self._insert_chunk(environment, size, rng, versions, days)
            done += size
            self.stdout.write(f"{done}/{count} runs", ending="\r")
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"\nseeded {count} runs into {env} in {elapsed:.1f}s ({count / elapsed:.0f} runs/s)"
        )

    def _insert_chunk(self, environment, size, rng, versions, days) -> None:
        now = timezone.now()
        statuses = rng.choices(
            [s for s, _ in OUTCOMES], weights=[w for _, w in OUTCOMES], k=size
        )
        with transaction.atomic():
            first = reserve_run_numbers(environment, size)
            runs = [
                self._run(environment, first + i, status, rng, versions, now, days)
                for i, status in enumerate(statuses)
            ]
            created = Run.objects.bulk_create(runs, batch_size=500)
            RunTag.objects.bulk_create(
                [
                    RunTag(
                        run_id=run.pk,
                        environment=environment,
                        tag=tag,
                        created_at=run.created_at,
                    )
                    for run in created
                    for tag in run.tags
                ],
                batch_size=1000,
            )

    def _run(self, environment, number, status, rng, versions, now, days) -> Run:
        task = rng.choice(list(TASKS))
        age = timedelta(
            seconds=days * 86400 * rng.random() ** 2
        )  # more recent runs than old ones
        created = now - age
        queued_for = timedelta(milliseconds=rng.randint(5, 4000))
        duration = rng.randint(50, 120_000) if status != RunStatus.EXPIRED else 0
        started = created + queued_for if status != RunStatus.EXPIRED else None
        finished = (started or created) + timedelta(milliseconds=duration or 600_000)
        customer = rng.choice(CUSTOMERS)
        tags = sorted(
            {
                f"org_{customer}",
                *rng.sample(
                    ["priority", "retry", "eu", "us", "beta"], k=rng.randint(0, 2)
                ),
            }
        )
        error_name, error_message = ERRORS.get(status, (None, None))
        attempts = (
            0
            if status == RunStatus.EXPIRED
            else (3 if status == RunStatus.FAILED else 1)
        )
        return Run(
            environment=environment,
            number=number,
            task_identifier=task,
            status=status,
            payload=json.dumps(
                {"customer": customer, "ref": rng.randint(1000, 999999)}
            ),
            output=json.dumps({"ok": True, "items": rng.randint(1, 50)})
            if status == RunStatus.COMPLETED
            else None,
            error={"name": error_name, "message": error_message, "stack": ""}
            if error_name
            else None,
            metadata={"progress": 1.0}
            if status == RunStatus.COMPLETED and rng.random() < 0.3
            else {},
            tags=tags,
            created_at=created,
            updated_at=finished,
            queued_at=created,
            queue_timestamp=created,
            started_at=started,
            finished_at=finished,
            expired_at=finished if status == RunStatus.EXPIRED else None,
            is_test=rng.random() < 0.03,
            version=rng.choice(versions),
            max_attempts=3,
            attempt_count=attempts,
            queue=TASKS[task],
            machine="small-1x",
            duration_ms=duration,
        )
