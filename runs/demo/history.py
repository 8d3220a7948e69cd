"""Realistic finished runs of the demo tasks, for `seed_runs` and a first `serve --demo`.

Runs are spread over the last `days` (more recent ones more frequent), numbered in
time order, with the demo tasks' queues, payloads, outputs, errors, retries, tags,
test runs, idempotency keys and the deployment versions current at the time, each
with its attempts and its status history.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate

from django.db import transaction
from django.utils import timezone

from runs.demo.bulkload import Loader, take_ids
from runs.deployments import DEFAULT_RETRY
from runs.models import (
    Attempt,
    Deployment,
    DeploymentStatus,
    Environment,
    Run,
    RunEvent,
    RunTag,
    TaskDefinition,
    new_run_id,
)
from runs.statuses import RunStatus
from runs.triggering import reserve_run_numbers

S = RunStatus
# task → (queue, machine, typical duration in ms)
TASKS = {
    "process-order": ("orders", "small-1x", (2_000, 7_000)),
    "send-email": ("task/send-email", "small-1x", (200, 900)),
    "email-campaign": ("task/email-campaign", "small-1x", (100, 600)),
    "charge-card": ("task/charge-card", "small-1x", (400, 1_500)),
    "fraud-check": ("task/fraud-check", "small-1x", (300, 1_000)),
    "sync-inventory": ("inventory", "small-1x", (600, 4_000)),
    "resize-image": ("task/resize-image", "medium-1x", (200, 1_000)),
    "generate-report": ("reports", "small-1x", (8_000, 20_000)),
    "call-webhook": ("task/call-webhook", "small-1x", (100, 600)),
}
TASK_NAMES = list(TASKS)
TASK_WEIGHTS = list(accumulate([25, 25, 6, 12, 12, 10, 8, 2, 8]))
OUTCOMES = [
    (S.COMPLETED, 80),
    (S.FAILED, 7),
    (S.CANCELED, 4),
    (S.CRASHED, 3),
    (S.EXPIRED, 3),
    (S.TIMED_OUT, 2),
    (S.SYSTEM_FAILURE, 1),
]
OUTCOME_NAMES = [s for s, _ in OUTCOMES]
OUTCOME_WEIGHTS = list(accumulate(w for _, w in OUTCOMES))
ERRORS = {
    S.FAILED: ("RuntimeError", "Upstream inventory API returned 503"),
    S.CRASHED: ("TaskProcessExited", "The task process exited with code 137"),
    S.TIMED_OUT: (
        "MaxDurationExceededError",
        "Run exceeded maximum compute time (maxDuration) of 60 seconds",
    ),
    S.SYSTEM_FAILURE: (
        "WorkerLost",
        "The worker running this attempt stopped responding",
    ),
}
CUSTOMERS = ["acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne"]
EXTRA_TAGS = ["priority", "eu", "us", "beta", "retry"]
WAREHOUSES = ["berlin", "dallas", "osaka", "lagos"]


def historical_versions(
    environment: Environment, days: int, now: datetime
) -> list[tuple[int, str, datetime]]:
    """(deployment id, version, deployed at), oldest first. An environment without
    deployments gets a few past ones, none of them current."""
    existing = list(
        Deployment.objects.filter(environment=environment)
        .order_by("created_at", "id")
        .values_list("pk", "version", "created_at")
    )
    if existing:
        return existing
    made = []
    for offset in (days, days * 2 // 3, days // 3):
        at = now - timedelta(days=offset, hours=3)
        deployment = Deployment.objects.create(
            environment=environment,
            version=f"{at:%Y%m%d}.1",
            status=DeploymentStatus.DEPLOYED,
            task_set_hash=f"history-{at:%Y%m%d}",
            deployed_at=at,
        )
        Deployment.objects.filter(pk=deployment.pk).update(created_at=at)
        TaskDefinition.objects.bulk_create(
            TaskDefinition(
                deployment=deployment,
                slug=slug,
                queue=queue,
                retry=DEFAULT_RETRY,
                machine=machine,
                module="runs.demo.tasks",
                function=slug.replace("-", "_"),
            )
            for slug, (queue, machine, _) in TASKS.items()
        )
        made.append((deployment.pk, deployment.version, at))
    return made


@dataclass
class History:
    environment: Environment
    total: int
    days: float
    rng: random.Random
    now: datetime
    versions: list[tuple[int, str, datetime]]

    def created_at(self, index: int) -> datetime:
        """The index-th run of `total`, oldest first; recent runs are denser."""
        u = 1 - (index + self.rng.random()) / self.total
        return self.now - timedelta(seconds=self.days * 86_400 * u * u)

    def version(self, at: datetime) -> tuple[int | None, str]:
        current = [(pk, v) for pk, v, deployed in self.versions if deployed <= at]
        return current[-1] if current else (None, "")

    def load(self, start: int, count: int) -> None:
        """Insert runs start … start+count-1 of the history (one transaction)."""
        with transaction.atomic():
            first_number = reserve_run_numbers(self.environment, count)
            ids = take_ids(Run, count)
            rows = [
                self._run(ids[i], first_number + i, self.created_at(start + i))
                for i in range(count)
            ]
            Loader(Run, explicit_ids=True).load(r["run"] for r in rows)
            Loader(RunTag).load(t for r in rows for t in r["tags"])
            Loader(Attempt).load(a for r in rows for a in r["attempts"])
            Loader(RunEvent).load(e for r in rows for e in r["events"])

    def _run(self, pk: int, number: int, created: datetime) -> dict:
        rng = self.rng
        task = rng.choices(TASK_NAMES, cum_weights=TASK_WEIGHTS)[0]
        queue, machine, (low, high) = TASKS[task]
        status = rng.choices(OUTCOME_NAMES, cum_weights=OUTCOME_WEIGHTS)[0]
        customer = rng.choice(CUSTOMERS)
        tags = sorted({f"org_{customer}", *rng.sample(EXTRA_TAGS, rng.randint(0, 2))})
        started = None
        if status != S.EXPIRED and not (status == S.CANCELED and rng.random() < 0.5):
            started = created + timedelta(milliseconds=rng.randint(5, 3_000))
        duration = rng.randint(low, high) if started else 0
        if status == S.TIMED_OUT:
            duration = 60_000
        finished = (started or created) + timedelta(
            milliseconds=duration or rng.randint(60_000, 600_000)
        )
        attempts = self._attempts(status, started, finished) if started else []
        deployment_id, version = self.version(created) if started else (None, "")
        error = ERRORS.get(status)
        key = f"order-{number}" if task == "process-order" else None
        run = {
            "id": pk,
            "friendly_id": new_run_id(),
            "number": number,
            "environment_id": self.environment.pk,
            "task_identifier": task,
            "status": status,
            "payload": json.dumps(self._payload(task, customer, number)),
            "output": json.dumps(self._output(task, rng))
            if status == S.COMPLETED
            else None,
            "error": {"name": error[0], "message": error[1], "stack": ""}
            if error
            else None,
            "metadata": self._metadata(task, status),
            "tags": tags,
            "idempotency_key": key,
            "idempotency_key_user": key,
            "idempotency_key_expires_at": created + timedelta(days=30) if key else None,
            "created_at": created,
            "updated_at": finished,
            "queued_at": created,
            "queue_timestamp": created,
            "started_at": started,
            "finished_at": finished,
            "expired_at": finished if status == S.EXPIRED else None,
            "is_test": rng.random() < 0.03,
            "deployment_id": deployment_id,
            "version": version,
            "max_attempts": 3,
            "attempt_count": len(attempts),
            "queue": queue,
            "machine": machine,
            "duration_ms": duration,
            "ttl": "10m" if self.environment.type == "DEVELOPMENT" else None,
        }
        return {
            "run": run,
            "tags": [
                {
                    "run_id": pk,
                    "environment_id": self.environment.pk,
                    "tag": t,
                    "created_at": created,
                }
                for t in tags
            ],
            "attempts": [{"run_id": pk, **a} for a in attempts],
            "events": self._events(pk, status, created, started, finished, attempts),
        }

    def _attempts(
        self, status: str, started: datetime, finished: datetime
    ) -> list[dict]:
        if status == S.FAILED:
            outcomes = ["FAILED"] * 3
        elif status == S.COMPLETED:
            outcomes = (
                ["FAILED", "COMPLETED"] if self.rng.random() < 0.08 else ["COMPLETED"]
            )
        else:
            outcomes = [
                {
                    S.CANCELED: "CANCELED",
                    S.CRASHED: "CRASHED",
                    S.TIMED_OUT: "TIMED_OUT",
                    S.SYSTEM_FAILURE: "CRASHED",
                }[status]
            ]
        span = (finished - started) / len(outcomes)
        return [
            {
                "number": n,
                "status": outcome,
                "worker_id": "history",
                "started_at": started + span * (n - 1),
                "completed_at": started + span * n,
            }
            for n, outcome in enumerate(outcomes, start=1)
        ]

    def _events(self, pk, status, created, started, finished, attempts) -> list[dict]:
        base = {"run_id": pk, "environment_id": self.environment.pk, "kind": "status"}
        events = [
            {
                **base,
                "status": S.QUEUED,
                "message": "Run triggered",
                "created_at": created,
            }
        ]
        for attempt in attempts:
            events.append(
                {
                    **base,
                    "status": S.EXECUTING,
                    "message": "Attempt started",
                    "created_at": attempt["started_at"],
                }
            )
            if attempt["status"] == "FAILED" and attempt is not attempts[-1]:
                events.append(
                    {
                        **base,
                        "status": S.WAITING,
                        "message": f"Attempt {attempt['number']} failed. Retrying",
                        "created_at": attempt["completed_at"],
                    }
                )
        events.append({**base, "status": status, "message": "", "created_at": finished})
        return events

    def _payload(self, task: str, customer: str, number: int) -> dict:
        rng = self.rng
        return {
            "process-order": {"order_id": 10_000 + number, "items": rng.randint(1, 5)},
            "send-email": {"to": f"user{rng.randint(1, 999)}@{customer}.com"},
            "email-campaign": {"recipients": rng.randint(2, 40)},
            "charge-card": {"amount": rng.randint(5, 500), "customer": customer},
            "fraud-check": {"amount": rng.randint(5, 500)},
            "sync-inventory": {"warehouse": rng.choice(WAREHOUSES)},
            "resize-image": {
                "url": f"https://cdn.example.com/{rng.randint(1, 9999)}.png"
            },
            "generate-report": {"pages": rng.randint(8, 20), "customer": customer},
            "call-webhook": {"url": f"https://hooks.{customer}.com/runwatch"},
        }[task]

    @staticmethod
    def _output(task: str, rng: random.Random) -> dict:
        return {
            "process-order": {"tracking": f"TRK{rng.randint(100_000, 999_999)}"},
            "send-email": {"message_id": f"<{rng.getrandbits(40):x}@runwatch.local>"},
            "email-campaign": {"queued": rng.randint(2, 40)},
            "charge-card": {"charged": True, "amount": rng.randint(5, 500)},
            "fraud-check": {"score": round(rng.random() * 0.9, 3), "approved": True},
            "sync-inventory": {"synced": rng.randint(50, 500)},
            "resize-image": {"sizes": [64, 256, 1024]},
            "generate-report": {"url": "https://reports.example.com/r.pdf"},
            "call-webhook": {"status": 200},
        }[task]

    @staticmethod
    def _metadata(task: str, status: str) -> dict:
        if status != S.COMPLETED:
            return {}
        if task == "process-order":
            return {"status": "shipped", "step": "ship", "progress": 1.0}
        if task == "generate-report":
            return {"progress": 1.0}
        return {}


def seed_history(
    environment: Environment,
    count: int,
    *,
    days: float = 30,
    seed: int | None = None,
    chunk: int = 20_000,
    progress=None,
) -> None:
    """Load `count` finished runs into `environment`, `chunk` per transaction."""
    now = timezone.now()
    history = History(
        environment=environment,
        total=count,
        days=days,
        rng=random.Random(seed),
        now=now,
        versions=historical_versions(environment, max(1, int(days)), now),
    )
    for start in range(0, count, chunk):
        history.load(start, min(chunk, count - start))
        if progress:
            progress(min(count, start + chunk))
