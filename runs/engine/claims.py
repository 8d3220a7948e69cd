"""Claiming queued runs for a worker.

One transaction locks up to `limit` QUEUED runs with `SELECT … FOR UPDATE SKIP LOCKED`
(ordered by queue_timestamp, i.e. priority then age), moves them to DEQUEUED with one
UPDATE and creates their Attempt rows with one INSERT. Concurrent workers skip each
other's locked rows, so a run is claimed exactly once. On SQLite the IMMEDIATE
transaction already serializes writers, which makes the same code atomic.

Paused queues are skipped. Queues with a concurrency limit are claimed separately
under a lock on their Queue row, counting runs already DEQUEUED/EXECUTING per
concurrency key (Trigger.dev: each concurrency key is its own copy of the queue).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    Count,
    F,
    Q,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from runs.lifecycle import record_events
from runs.models import Attempt, Deployment, Queue, Run, RunEvent, RunEventKind
from runs.statuses import RunStatus

RUNNING = (RunStatus.DEQUEUED, RunStatus.EXECUTING)


@dataclass
class ClaimedRun:
    pk: int
    friendly_id: str
    environment_id: int
    task: str
    payload: str
    payload_type: str
    metadata: dict
    tags: list[str]
    is_test: bool
    created_at: datetime
    attempt: int
    attempt_id: int
    max_attempts: int
    max_duration: int | None
    queue: str
    machine: str
    version: str
    duration_ms: int
    batch_id: int | None


_FIELDS = (
    "pk",
    "friendly_id",
    "environment_id",
    "task_identifier",
    "payload",
    "payload_type",
    "metadata",
    "tags",
    "is_test",
    "created_at",
    "attempt_count",
    "max_attempts",
    "max_duration",
    "queue",
    "machine",
    "version",
    "duration_ms",
    "batch_id",
)


@dataclass
class ClaimRules:
    """What claiming needs besides the runs; a worker reloads it every second or so."""

    special_queues: list[tuple[int, str, bool, int | None]]  # paused or limited
    versions: dict[
        int, tuple[int, str]
    ]  # environment → current (deployment id, version)

    @classmethod
    def load(cls, environment_ids: list[int]) -> ClaimRules:
        return cls(
            special_queues=list(
                Queue.objects.filter(environment_id__in=environment_ids)
                .filter(Q(paused=True) | Q(concurrency_limit__isnull=False))
                .values_list("environment_id", "name", "paused", "concurrency_limit")
            ),
            versions={
                env_id: (pk, version)
                for pk, env_id, version in Deployment.objects.filter(
                    environment_id__in=environment_ids, is_current=True
                ).values_list("pk", "environment_id", "version")
            },
        )


def claim_runs(
    worker_id: str,
    environment_ids: list[int],
    task_ids: list[str],
    limit: int,
    rules: ClaimRules | None = None,
) -> list[ClaimedRun]:
    if limit <= 0 or not task_ids or not environment_ids:
        return []
    rules = rules or ClaimRules.load(environment_ids)
    special = rules.special_queues
    with transaction.atomic():
        base = Run.objects.filter(
            status=RunStatus.QUEUED,
            environment_id__in=environment_ids,
            task_identifier__in=task_ids,
        )
        ids = _claim_unlimited(base, special, limit)
        for env_id, name, paused, queue_limit in special:
            if len(ids) >= limit:
                break
            if not paused:
                ids += _claim_limited(base, env_id, name, queue_limit, limit - len(ids))
        if not ids:
            return []
        return _dequeue(ids, worker_id, rules.versions)


def _claim_unlimited(base, special, limit: int) -> list[int]:
    qs = base
    for env_id, name, _, _ in special:
        qs = qs.exclude(environment_id=env_id, queue=name)
    return list(
        qs.select_for_update(skip_locked=True)
        .order_by("queue_timestamp", "id")
        .values_list("pk", flat=True)[:limit]
    )


def _claim_limited(
    base, env_id: int, name: str, queue_limit: int, want: int
) -> list[int]:
    in_queue = base.filter(environment_id=env_id, queue=name)
    if not in_queue.exists():
        return []
    # Serialize claimers of this queue so two workers cannot both fill the last slot.
    Queue.objects.select_for_update().filter(environment_id=env_id, name=name).first()
    running = Counter(
        dict(
            Run.objects.filter(environment_id=env_id, queue=name, status__in=RUNNING)
            .values_list("concurrency_key")
            .annotate(n=Count("id"))
        )
    )
    candidates = list(
        in_queue.select_for_update(skip_locked=True)
        .order_by("queue_timestamp", "id")
        .values_list("pk", "concurrency_key")[: max(want, queue_limit) * 4]
    )
    picked = []
    for pk, key in candidates:
        if len(picked) >= want:
            break
        if running[key] < queue_limit:
            running[key] += 1
            picked.append(pk)
    return picked


def _dequeue(
    ids: list[int], worker_id: str, versions: dict[int, tuple[int, str]]
) -> list[ClaimedRun]:
    now = timezone.now()
    Run.objects.filter(pk__in=ids).update(
        **_pin_versions(versions),
        status=RunStatus.DEQUEUED,
        attempt_count=F("attempt_count") + 1,
        started_at=Coalesce(F("started_at"), Value(now)),
        worker_id=worker_id,
        heartbeat_at=now,
        retry_at=None,
        updated_at=now,
    )
    rows = list(
        Run.objects.filter(pk__in=ids)
        .order_by("queue_timestamp", "id")
        .values_list(*_FIELDS)
    )
    attempts = Attempt.objects.bulk_create(
        Attempt(run_id=row[0], number=row[10], worker_id=worker_id, started_at=now)
        for row in rows
    )
    record_events(
        [
            RunEvent(
                run_id=row[0],
                environment_id=row[2],
                kind=RunEventKind.STATUS,
                status=RunStatus.DEQUEUED,
                message=f"Attempt {row[10]} dequeued by {worker_id}",
                created_at=now,
            )
            for row in rows
        ]
    )
    return [
        ClaimedRun(
            *row[:10],
            attempt=row[10],
            attempt_id=attempt.pk,
            max_attempts=row[11],
            max_duration=row[12],
            queue=row[13],
            machine=row[14],
            version=row[15],
            duration_ms=row[16],
            batch_id=row[17],
        )
        for row, attempt in zip(rows, attempts, strict=True)
    ]


def _pin_versions(versions: dict[int, tuple[int, str]]) -> dict:
    """Runs not locked to a version run on their environment's current deployment:
    CASE expressions folded into the dequeue UPDATE."""
    if not versions:
        return {}
    unpinned = [(env_id, Q(environment_id=env_id, version="")) for env_id in versions]
    return {
        "deployment_id": Case(
            *[When(q, then=Value(versions[env_id][0])) for env_id, q in unpinned],
            default=F("deployment_id"),
            output_field=BigIntegerField(),
        ),
        "version": Case(
            *[When(q, then=Value(versions[env_id][1])) for env_id, q in unpinned],
            default=F("version"),
            output_field=CharField(),
        ),
    }
