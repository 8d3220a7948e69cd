"""Deployments: versioned task sets per environment.

A worker registers the tasks it can run; a changed set becomes a new version
(YYYYMMDD.N) and the current one, and runs waiting for one of its tasks leave
PENDING_VERSION.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from runs.lifecycle import record_events
from runs.models import (
    Deployment,
    DeploymentStatus,
    Environment,
    Queue,
    Run,
    RunEvent,
    RunEventKind,
    TaskDefinition,
)
from runs.statuses import RunStatus

DEFAULT_RETRY = {
    "maxAttempts": 3,
    "factor": 2,
    "minTimeoutInMs": 1000,
    "maxTimeoutInMs": 60000,
    "randomize": True,
}


@dataclass(frozen=True)
class TaskSpec:
    """What a worker knows about one task: enough to create a TaskDefinition."""

    slug: str
    module: str
    function: str
    queue: str = ""
    retry: dict = field(default_factory=lambda: dict(DEFAULT_RETRY))
    max_duration: int | None = None
    machine: str = "small-1x"
    queue_concurrency_limit: int | None = None

    @property
    def queue_name(self) -> str:
        return self.queue or f"task/{self.slug}"


def current_deployment(environment: Environment) -> Deployment | None:
    return Deployment.objects.filter(environment=environment, is_current=True).first()


def find_task(
    environment: Environment, task_identifier: str, version: str = ""
) -> TaskDefinition | None:
    """The task definition in the given version, or in the current deployment."""
    tasks = TaskDefinition.objects.select_related("deployment").filter(
        deployment__environment=environment, slug=task_identifier
    )
    if version:
        return tasks.filter(deployment__version=version).first()
    return tasks.filter(deployment__is_current=True).first()


def _task_set_hash(specs: list[TaskSpec]) -> str:
    canonical = json.dumps(
        sorted((asdict(s) for s in specs), key=lambda s: s["slug"]), sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _next_version(environment: Environment) -> str:
    today = timezone.now().strftime("%Y%m%d")
    versions = Deployment.objects.filter(
        environment=environment, version__startswith=f"{today}."
    ).values_list("version", flat=True)
    n = max((int(v.split(".", 1)[1]) for v in versions), default=0) + 1
    return f"{today}.{n}"


def register_tasks(environment: Environment, specs: list[TaskSpec]) -> Deployment:
    """Make `specs` the environment's current task set; reuse the current deployment
    when nothing changed. Safe when several workers start at once."""
    digest = _task_set_hash(specs)
    current = current_deployment(environment)
    if current and current.task_set_hash == digest:
        return current
    for _ in range(5):
        try:
            with transaction.atomic():
                return _create_deployment(environment, specs, digest)
        except IntegrityError:  # another worker registered at the same moment
            current = current_deployment(environment)
            if current and current.task_set_hash == digest:
                return current
    raise RuntimeError("could not register deployment")


def _create_deployment(
    environment: Environment, specs: list[TaskSpec], digest: str
) -> Deployment:
    now = timezone.now()
    Environment.objects.select_for_update().get(pk=environment.pk)
    Deployment.objects.filter(environment=environment, is_current=True).update(
        is_current=False
    )
    deployment = Deployment.objects.create(
        environment=environment,
        version=_next_version(environment),
        status=DeploymentStatus.DEPLOYED,
        is_current=True,
        task_set_hash=digest,
        deployed_at=now,
    )
    TaskDefinition.objects.bulk_create(
        TaskDefinition(
            deployment=deployment,
            slug=s.slug,
            queue=s.queue_name,
            retry=s.retry,
            max_duration=s.max_duration,
            machine=s.machine,
            module=s.module,
            function=s.function,
        )
        for s in specs
    )
    for s in specs:
        queue, created = Queue.objects.get_or_create(
            environment=environment,
            name=s.queue_name,
            defaults={"concurrency_limit": s.queue_concurrency_limit},
        )
        if not created and queue.concurrency_limit != s.queue_concurrency_limit:
            queue.concurrency_limit = s.queue_concurrency_limit
            queue.save(update_fields=["concurrency_limit"])
    release_pending_version(environment, [s.slug for s in specs], now)
    return deployment


def release_pending_version(
    environment: Environment, task_slugs: list[str], now
) -> int:
    """PENDING_VERSION → QUEUED for runs of tasks the new deployment brings (one UPDATE)."""
    waiting = list(
        Run.objects.select_for_update()
        .filter(
            environment=environment,
            status=RunStatus.PENDING_VERSION,
            task_identifier__in=task_slugs,
        )
        .values_list("pk", "priority_ms")
    )
    if not waiting:
        return 0
    ids = [pk for pk, _ in waiting]
    Run.objects.filter(pk__in=ids, status=RunStatus.PENDING_VERSION).update(
        status=RunStatus.QUEUED, queued_at=now, queue_timestamp=now, updated_at=now
    )
    _apply_priority(waiting, now)
    record_events(
        [
            RunEvent(
                run_id=pk,
                environment_id=environment.pk,
                kind=RunEventKind.STATUS,
                status=RunStatus.QUEUED,
                message="A deployment with this task is available",
                created_at=now,
            )
            for pk in ids
        ]
    )
    return len(ids)


def _apply_priority(rows: list[tuple[int, int]], now) -> None:
    from datetime import timedelta

    for pk, priority_ms in rows:
        if priority_ms:
            Run.objects.filter(pk=pk).update(
                queue_timestamp=now - timedelta(milliseconds=priority_ms)
            )
