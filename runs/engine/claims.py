"""Claiming queued runs for a worker.

One transaction locks up to `limit` QUEUED runs with `SELECT … FOR UPDATE SKIP LOCKED`
(ordered by queue_timestamp, i.e. priority then age), starts them with one UPDATE
(QUEUED → DEQUEUED → EXECUTING: both events are recorded, the attempt process gets the
run right after commit) and creates their Attempt rows with one INSERT. Concurrent workers skip each
other's locked rows, so a run is claimed exactly once. On SQLite the IMMEDIATE
transaction already serializes writers, which makes the same code atomic.

Paused queues are skipped (read in the claiming transaction, so a pause applies at
once). Queues with a concurrency limit are claimed separately under a lock on their
Queue row, counting runs already DEQUEUED/EXECUTING per concurrency key
(Trigger.dev: each concurrency key is its own copy of the queue).
A run past its TTL is never started (the scheduler expires it). A run locked to a
version is only claimed by a worker whose task set is that version's; every other
run is stamped with the claiming worker's own deployment.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from runs.engine import pgsql
from runs.lifecycle import check_allowed, record_events
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
    priority_ms: int


# ClaimedRun field → Run column, for everything but the attempt's id.
_COLUMNS = {
    "pk": "pk",
    "friendly_id": "friendly_id",
    "environment_id": "environment_id",
    "task": "task_identifier",
    "payload": "payload",
    "payload_type": "payload_type",
    "metadata": "metadata",
    "tags": "tags",
    "is_test": "is_test",
    "created_at": "created_at",
    "attempt": "attempt_count",
    "max_attempts": "max_attempts",
    "max_duration": "max_duration",
    "queue": "queue",
    "machine": "machine",
    "version": "version",
    "duration_ms": "duration_ms",
    "batch_id": "batch_id",
    "priority_ms": "priority_ms",
}


@dataclass
class ClaimRules:
    """What claiming needs besides the runs; a worker reloads it every second or so."""

    limited_queues: list[tuple[int, str]]  # (environment, name) with a limit
    # environment → the worker's own (deployment id, version) there
    deployments: dict[int, tuple[int, str]]
    # environment → versions with the worker's task set (runs locked to them are ours)
    compatible_versions: dict[int, list[str]]

    @classmethod
    def load(cls, environment_ids: list[int], task_set_hash: str = "") -> ClaimRules:
        own = Deployment.objects.filter(
            environment_id__in=environment_ids, task_set_hash=task_set_hash
        ).order_by("created_at", "id")
        deployments: dict[int, tuple[int, str]] = {}
        compatible: dict[int, list[str]] = {}
        for pk, env_id, version in own.values_list("pk", "environment_id", "version"):
            deployments[env_id] = (pk, version)  # the newest wins
            compatible.setdefault(env_id, []).append(version)
        return cls(
            limited_queues=list(
                Queue.objects.filter(
                    environment_id__in=environment_ids,
                    concurrency_limit__isnull=False,
                    paused=False,
                ).values_list("environment_id", "name")
            ),
            deployments=deployments,
            compatible_versions=compatible,
        )

    def version_filter(self) -> Q:
        allowed = Q(lock_to_version="")
        for env_id, versions in self.compatible_versions.items():
            allowed |= Q(environment_id=env_id, lock_to_version__in=versions)
        return allowed


def claimable(
    environment_ids: list[int], task_ids: list[str], rules: ClaimRules, now: datetime
):
    """Queued runs this worker may start: its environments and tasks, not past their
    TTL, not locked to a version with other code."""
    return (
        Run.objects.filter(
            status=RunStatus.QUEUED,
            environment_id__in=environment_ids,
            task_identifier__in=task_ids,
        )
        .filter(Q(ttl_expires_at__isnull=True) | Q(ttl_expires_at__gt=now))
        .filter(rules.version_filter())
    )


def anything_to_claim(
    environment_ids: list[int], task_ids: list[str], rules: ClaimRules
) -> bool:
    """A cheap, lock-free look (on SQLite: no write transaction) before claiming."""
    if not task_ids or not environment_ids:
        return False
    return claimable(environment_ids, task_ids, rules, timezone.now()).exists()


def claim_runs(
    worker_id: str,
    environment_ids: list[int],
    task_ids: list[str],
    limit: int,
    rules: ClaimRules,
) -> list[ClaimedRun]:
    """Claim up to `limit` runs for `worker_id` and start them: QUEUED → DEQUEUED →
    EXECUTING in one transaction (both events are recorded), attempts created."""
    if limit <= 0 or not task_ids or not environment_ids:
        return []
    now = timezone.now()
    postgres = connection.vendor == "postgresql"
    claimed: list[dict] = []
    ids: list[int] = []
    # No savepoint: the worker calls this inside its own transaction.
    with transaction.atomic(savepoint=False):
        if postgres:
            claimed = pgsql.start(
                worker_id,
                rules.deployments,
                now,
                limit=limit,
                environment_ids=environment_ids,
                task_ids=task_ids,
                compatible_versions=rules.compatible_versions,
            )
        else:
            ids = _claim_unlimited(
                claimable(environment_ids, task_ids, rules, now), limit
            )
        if rules.limited_queues and len(claimed) + len(ids) < limit:
            base = claimable(environment_ids, task_ids, rules, now)
            for env_id, name in rules.limited_queues:
                want = limit - len(claimed) - len(ids)
                if want <= 0:
                    break
                ids += _claim_limited(base, env_id, name, want)
        if ids:
            start = pgsql.start if postgres else _orm_start
            claimed += start(worker_id, rules.deployments, now, ids=ids)
    return [ClaimedRun(**c) for c in claimed]


def _claim_unlimited(base, limit: int) -> list[int]:
    """Runs of queues with no limit and not paused, read fresh in this transaction:
    a pause or a new limit applies to the very next claim."""
    restricted = Queue.objects.filter(
        environment_id=OuterRef("environment_id"), name=OuterRef("queue")
    ).filter(Q(paused=True) | Q(concurrency_limit__isnull=False))
    return list(
        base.exclude(Exists(restricted))
        .select_for_update(skip_locked=True)
        .order_by("queue_timestamp", "id")
        .values_list("pk", flat=True)[:limit]
    )


def _claim_limited(base, env_id: int, name: str, want: int) -> list[int]:
    in_queue = base.filter(environment_id=env_id, queue=name)
    if not in_queue.exists():
        return []
    # Locking the Queue row serializes claimers of this queue, so two workers cannot
    # both fill its last slot; its settings are read under that lock.
    settings = (
        Queue.objects.select_for_update()
        .filter(environment_id=env_id, name=name)
        .values_list("paused", "concurrency_limit")
        .first()
    )
    if settings is None or settings[0] or settings[1] is None:
        return []
    queue_limit = settings[1]
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


def _orm_start(
    worker_id: str,
    deployments: dict[int, tuple[int, str]],
    now: datetime,
    *,
    ids: list[int],
) -> list[dict]:
    """Start locked queued runs (the ORM form of pgsql.start)."""
    check_allowed(RunStatus.DEQUEUED, [RunStatus.QUEUED])
    check_allowed(RunStatus.EXECUTING, [RunStatus.DEQUEUED])
    Run.objects.filter(pk__in=ids).update(
        **_stamp_versions(deployments),
        status=RunStatus.EXECUTING,
        attempt_count=F("attempt_count") + 1,
        started_at=Coalesce(F("started_at"), Value(now)),
        worker_id=worker_id,
        heartbeat_at=now,
        retry_at=None,
        ttl_expires_at=None,  # the TTL bounds the wait for a first start only
        updated_at=now,
    )
    rows = list(
        Run.objects.filter(pk__in=ids)
        .order_by("queue_timestamp", "id")
        .values_list(*_COLUMNS.values())
    )
    claimed = [dict(zip(_COLUMNS, row, strict=True)) for row in rows]
    attempts = Attempt.objects.bulk_create(
        Attempt(
            run_id=c["pk"], number=c["attempt"], worker_id=worker_id, started_at=now
        )
        for c in claimed
    )
    record_events(
        [
            RunEvent(
                run_id=c["pk"],
                environment_id=c["environment_id"],
                kind=RunEventKind.STATUS,
                status=status,
                message=message.format(attempt=c["attempt"], worker=worker_id),
                created_at=now,
            )
            for c in claimed
            for status, message in STARTED
        ]
    )
    return [
        {**c, "attempt_id": attempt.pk}
        for c, attempt in zip(claimed, attempts, strict=True)
    ]


STARTED = (
    (RunStatus.DEQUEUED, "Attempt {attempt} dequeued by {worker}"),
    (RunStatus.EXECUTING, "Attempt {attempt} started"),
)


def _stamp_versions(deployments: dict[int, tuple[int, str]]) -> dict:
    """Runs not locked to a version record the deployment that executes them (the
    claiming worker's, per environment): CASE expressions in the dequeue UPDATE."""
    if not deployments:
        return {}
    unlocked = [
        (env_id, Q(environment_id=env_id, lock_to_version="")) for env_id in deployments
    ]
    return {
        "deployment_id": Case(
            *[When(q, then=Value(deployments[env_id][0])) for env_id, q in unlocked],
            default=F("deployment_id"),
            output_field=BigIntegerField(),
        ),
        "version": Case(
            *[When(q, then=Value(deployments[env_id][1])) for env_id, q in unlocked],
            default=F("version"),
            output_field=CharField(),
        ),
    }
