"""Deployments: versioned task sets per environment.

A worker registers the tasks it can run; a changed set becomes a new version
(YYYYMMDD.N) and the current one, and runs waiting for one of its tasks leave
PENDING_VERSION.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Case, F, PositiveIntegerField, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from realtime.publish import object_changed
from runs.lifecycle import queue_runs
from runs.models import (
    Deployment,
    DeploymentStatus,
    Environment,
    Queue,
    Run,
    TaskDefinition,
)
from runs.statuses import RunStatus

MIN_MAX_DURATION = 5  # seconds (Trigger.dev's minimum maxDuration)

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


def task_set_hash(specs: list[TaskSpec]) -> str:
    """Identifies a task set: equal sets are the same code, hence the same version."""
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
    digest = task_set_hash(specs)
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
    previous = current_deployment(environment)
    if previous and previous.task_set_hash == digest:  # registered while we waited
        return previous
    if previous:
        Deployment.objects.filter(pk=previous.pk).update(is_current=False)
        object_changed("deployment", previous.pk, environment.pk)
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
            max_duration=_clamped_max_duration(s.max_duration),
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
    release_pending_version(environment, specs, now)
    object_changed("deployment", deployment.pk, environment.pk)
    return deployment


def release_pending_version(
    environment: Environment, specs: list[TaskSpec], now: datetime
) -> int:
    """PENDING_VERSION → QUEUED for runs of the tasks a new deployment brings. A run
    triggered before its task existed got placeholder options: it takes the task's
    queue and max duration unless the trigger set them."""
    moved = 0
    for spec in specs:
        waiting = list(
            Run.objects.select_for_update()
            .filter(
                environment=environment,
                status=RunStatus.PENDING_VERSION,
                task_identifier=spec.slug,
            )
            .values_list("pk", "priority_ms")
        )
        if not waiting:
            continue
        placeholder = f"task/{spec.slug}"
        moved += len(
            queue_runs(
                waiting,
                allowed_from=[RunStatus.PENDING_VERSION],
                message="A deployment with this task is available",
                now=now,
                queue=Case(
                    When(queue=placeholder, then=Value(spec.queue_name)),
                    default=F("queue"),
                ),
                max_duration=Coalesce(
                    F("max_duration"),
                    Value(_clamped_max_duration(spec.max_duration)),
                    output_field=PositiveIntegerField(),
                ),
            )
        )
    return moved


def _clamped_max_duration(seconds: int | None) -> int | None:
    return None if seconds is None else max(MIN_MAX_DURATION, int(seconds))


def release_stranded_pending(now: datetime) -> int:
    """PENDING_VERSION runs whose task the current deployment already has: a trigger
    that found no task commits just after a deployment released the waiting runs.
    The scheduler sweeps them up (one indexed read when there are none)."""
    stranded = set(
        Run.objects.filter(status=RunStatus.PENDING_VERSION)
        .values_list("environment_id", "task_identifier")
        .distinct()[:100]
    )
    if not stranded:
        return 0
    definitions = TaskDefinition.objects.select_related(
        "deployment__environment"
    ).filter(
        deployment__is_current=True,
        deployment__environment_id__in={env for env, _ in stranded},
        slug__in={task for _, task in stranded},
    )
    moved = 0
    for definition in definitions:
        environment = definition.deployment.environment
        if (environment.pk, definition.slug) not in stranded:
            continue
        spec = TaskSpec(
            slug=definition.slug,
            module=definition.module,
            function=definition.function,
            queue=definition.queue,
            max_duration=definition.max_duration,
        )
        with transaction.atomic():
            moved += release_pending_version(environment, [spec], now)
    return moved
