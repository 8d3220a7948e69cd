"""The tables. Status rules live in statuses.py, behaviour in the service modules."""

from __future__ import annotations

import secrets
import string

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.base import ModelState
from django.utils import timezone

from runs.querysets import RunQuerySet
from runs.statuses import EXPIRABLE, HOLDING, UNFINISHED_SORTED, RunStatus

_ALPHABET = string.ascii_lowercase + string.digits


def random_id(length: int = 25) -> str:
    """`length` random lowercase letters and digits: one read of 6 bits per character
    from the OS generator (36/64 per character, so the modulo bias is negligible)."""
    value = secrets.randbits(6 * length)
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 36)
        chars.append(_ALPHABET[digit])
    return "".join(chars)


def new_run_id() -> str:
    return f"run_{random_id()}"


def new_batch_id() -> str:
    return f"batch_{random_id()}"


def new_bulk_action_id() -> str:
    return f"bulk_{random_id()}"


class EnvironmentType(models.TextChoices):
    DEVELOPMENT = "DEVELOPMENT", "Development"
    STAGING = "STAGING", "Staging"
    PRODUCTION = "PRODUCTION", "Production"
    PREVIEW = "PREVIEW", "Preview"


KEY_PREFIX = {
    EnvironmentType.DEVELOPMENT: "tr_dev_",
    EnvironmentType.STAGING: "tr_stg_",
    EnvironmentType.PRODUCTION: "tr_prod_",
    EnvironmentType.PREVIEW: "tr_preview_",
}


def new_api_key(env_type: str) -> str:
    return KEY_PREFIX[env_type] + random_id(24)


class Environment(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    type = models.CharField(max_length=16, choices=EnvironmentType.choices)
    branch_name = models.CharField(
        max_length=128, blank=True
    )  # preview environments only
    api_key = models.CharField(max_length=64, unique=True)
    next_run_number = models.BigIntegerField(default=1)
    # Who may see this environment besides superusers.
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="environments"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.slug

    def regenerate_api_key(self) -> str:
        self.api_key = new_api_key(self.type)
        self.save(update_fields=["api_key"])
        return self.api_key

    @property
    def label(self) -> str:
        if self.type == EnvironmentType.PREVIEW:
            return f"Preview: {self.branch_name or self.slug}"
        return {
            "DEVELOPMENT": "Development",
            "STAGING": "Staging",
            "PRODUCTION": "Production",
        }[self.type]


class Queue(models.Model):
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="queues"
    )
    name = models.CharField(max_length=128)
    concurrency_limit = models.PositiveIntegerField(
        null=True, blank=True
    )  # None = unlimited
    paused = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "name"], name="queue_unique_name"
            )
        ]

    def __str__(self) -> str:
        return self.name


class DeploymentStatus(models.TextChoices):
    DEPLOYING = "DEPLOYING", "Deploying"
    DEPLOYED = "DEPLOYED", "Deployed"
    FAILED = "FAILED", "Failed"
    CANCELED = "CANCELED", "Canceled"


class Deployment(models.Model):
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="deployments"
    )
    version = models.CharField(max_length=32)  # YYYYMMDD.N
    status = models.CharField(
        max_length=16,
        choices=DeploymentStatus.choices,
        default=DeploymentStatus.DEPLOYED,
    )
    is_current = models.BooleanField(default=False)
    task_set_hash = models.CharField(
        max_length=64
    )  # identifies the registered task set
    created_at = models.DateTimeField(auto_now_add=True)
    deployed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "version"], name="deployment_unique_version"
            ),
            models.UniqueConstraint(
                fields=["environment"],
                condition=Q(is_current=True),
                name="deployment_one_current",
            ),
        ]

    def __str__(self) -> str:
        return self.version


class TaskDefinition(models.Model):
    deployment = models.ForeignKey(
        Deployment, on_delete=models.CASCADE, related_name="tasks"
    )
    slug = models.CharField(max_length=128)  # the task id, kebab-case
    queue = models.CharField(max_length=128)
    retry = models.JSONField(
        default=dict
    )  # {maxAttempts, factor, minTimeoutInMs, maxTimeoutInMs, randomize}
    max_duration = models.PositiveIntegerField(null=True, blank=True)  # seconds
    machine = models.CharField(max_length=16, default="small-1x")
    module = models.CharField(max_length=255)  # import path of the function
    function = models.CharField(max_length=128)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "slug"], name="task_unique_per_deployment"
            )
        ]

    def __str__(self) -> str:
        return self.slug


class BatchStatus(models.TextChoices):
    PENDING = "PENDING", "In progress"
    PROCESSING = "PROCESSING", "Processing"
    COMPLETED = "COMPLETED", "Completed"
    PARTIAL_FAILED = "PARTIAL_FAILED", "Partial failure"
    ABORTED = "ABORTED", "Aborted"


class Batch(models.Model):
    friendly_id = models.CharField(max_length=40, unique=True, default=new_batch_id)
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="batches"
    )
    status = models.CharField(
        max_length=16, choices=BatchStatus.choices, default=BatchStatus.PENDING
    )
    run_count = models.PositiveIntegerField(default=0)  # expected number of items
    sealed = models.BooleanField(default=True)
    idempotency_key = models.CharField(max_length=2048, null=True, blank=True)
    idempotency_key_expires_at = models.DateTimeField(null=True, blank=True)
    processing_errors = models.JSONField(
        default=list
    )  # [{index, taskIdentifier, error, errorCode?}]
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    processing_completed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # What every item of a streamed batch (created first, items sent later) inherits.
    parent = models.ForeignKey(
        "Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resume_parent_on_completion = models.BooleanField(default=False)
    # Items an idempotency key answered with an existing run: {index: run friendly id}.
    cached_items = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["environment", "-created_at", "-id"], name="batch_env_created"
            ),
            # the scheduler's sweep for batches whose runs have all finished
            models.Index(
                fields=["id"], condition=Q(status="PENDING"), name="batch_pending"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="batch_unique_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return self.friendly_id


class Run(models.Model):
    # Unique through Meta.constraints: `unique=True` would add a second (LIKE) index.
    friendly_id = models.CharField(max_length=40, default=new_run_id)
    number = models.BigIntegerField()  # sequential per environment
    # Every foreign key of runs_run is indexed by Meta.indexes only (composite or
    # partial): an index per key column is an index entry more for every status
    # change, the hottest write (a bulk cancel makes 100,000 of them).
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="runs", db_index=False
    )
    task_identifier = models.CharField(max_length=128)
    status = models.CharField(max_length=16, choices=RunStatus.choices)
    status_reason = models.CharField(max_length=255, blank=True)

    payload = models.TextField(blank=True)  # serialized packet, as received
    payload_type = models.CharField(max_length=64, default="application/json")
    output = models.TextField(null=True, blank=True)
    output_type = models.CharField(max_length=64, default="application/json")
    error = models.JSONField(null=True, blank=True)  # {name, message, stack}

    metadata = models.JSONField(default=dict)
    metadata_version = models.PositiveIntegerField(default=1)
    metadata_updated_at = models.DateTimeField(null=True, blank=True)
    seed_metadata = models.JSONField(
        null=True, blank=True
    )  # trigger-time metadata, reused by replay

    tags = models.JSONField(default=list)  # sorted; RunTag rows make them filterable

    idempotency_key = models.CharField(max_length=2048, null=True, blank=True)
    idempotency_key_user = models.CharField(
        max_length=2048, null=True, blank=True
    )  # user-facing form
    idempotency_key_expires_at = models.DateTimeField(null=True, blank=True)

    ttl = models.CharField(
        max_length=32, null=True, blank=True
    )  # duration string, e.g. "10m"
    ttl_expires_at = models.DateTimeField(null=True, blank=True)  # queued_at + ttl
    delay_until = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(
        null=True, blank=True
    )  # next attempt, while WAITING after a failure

    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    queued_at = models.DateTimeField(null=True, blank=True)
    queue_timestamp = models.DateTimeField(
        null=True, blank=True
    )  # queued_at minus priority: claim order
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)

    is_test = models.BooleanField(default=False)
    deployment = models.ForeignKey(
        Deployment,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        db_index=False,
    )
    version = models.CharField(
        max_length=32, blank=True
    )  # denormalized deployment.version
    lock_to_version = models.CharField(
        max_length=32, blank=True
    )  # requested version pin
    batch = models.ForeignKey(
        Batch,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        db_index=False,
    )
    batch_index = models.PositiveIntegerField(null=True, blank=True)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        db_index=False,
    )
    root = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="descendants",
        db_index=False,
    )
    depth = models.PositiveIntegerField(default=0)
    resume_parent_on_completion = models.BooleanField(default=False)  # triggerAndWait
    replayed_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replays",
        db_index=False,
    )

    max_attempts = models.PositiveIntegerField(default=3)
    attempt_count = models.PositiveIntegerField(default=0)
    max_duration = models.PositiveIntegerField(
        null=True, blank=True
    )  # seconds per attempt
    queue = models.CharField(max_length=128)
    concurrency_key = models.CharField(max_length=255, null=True, blank=True)
    machine = models.CharField(max_length=16, default="small-1x")
    priority_ms = models.IntegerField(default=0)
    duration_ms = models.BigIntegerField(default=0)

    worker_id = models.CharField(
        max_length=64, blank=True
    )  # worker holding the current attempt
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["friendly_id"], name="run_unique_friendly_id"
            ),
            models.UniqueConstraint(
                fields=["environment", "task_identifier", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="run_unique_idempotency_key",
            ),
            models.UniqueConstraint(
                fields=["environment", "number"], name="run_unique_number"
            ),
            # one run per batch item: streamed batch items are deduplicated by index
            models.UniqueConstraint(
                fields=["batch", "batch_index"],
                condition=Q(batch__isnull=False, batch_index__isnull=False),
                name="run_unique_batch_index",
            ),
        ]
        # Every list filter pairs with the (created_at, id) keyset order, newest first.
        indexes = [
            models.Index(
                fields=["environment", "-created_at", "-id"], name="run_env_created"
            ),
            models.Index(
                fields=["environment", "status", "-created_at", "-id"],
                name="run_env_status",
            ),
            # status last: the Tasks page counts a day of runs by task and status
            # from this index alone, and task + status filters check it there
            models.Index(
                fields=[
                    "environment",
                    "task_identifier",
                    "-created_at",
                    "-id",
                    "status",
                ],
                name="run_env_task",
            ),
            # runs not started yet have no version (unless locked to one)
            models.Index(
                fields=["environment", "version", "-created_at", "-id"],
                condition=~Q(version=""),
                name="run_env_version",
            ),
            models.Index(
                fields=["environment", "queue", "-created_at", "-id"],
                name="run_env_queue",
            ),
            models.Index(
                fields=["environment", "machine", "-created_at", "-id"],
                name="run_env_machine",
            ),
            # "test runs only" (few); "test runs hidden" reads run_env_created
            models.Index(
                fields=["environment", "-created_at", "-id"],
                condition=Q(is_test=True),
                name="run_env_test",
            ),
            # the Test page's "previous test runs" of one task
            models.Index(
                fields=["environment", "task_identifier", "-created_at", "-id"],
                condition=Q(is_test=True),
                name="run_env_task_test",
            ),
            # filter[batch]: a batch's runs, newest first
            models.Index(
                fields=["batch", "-created_at", "-id"],
                condition=Q(batch__isnull=False),
                name="run_batch_created",
            ),
            # "root runs only"
            models.Index(
                fields=["environment", "-created_at", "-id"],
                condition=Q(depth=0),
                name="run_env_root",
            ),
            # the worker's claim: each environment's queued runs in claim order (the
            # claim reads it per environment, so no plan ever sorts the whole queue)
            models.Index(
                fields=["environment", "queue_timestamp", "id"],
                condition=Q(status="QUEUED"),
                name="run_claimable",
            ),
            # an environment with a paused or limited queue: its other queues' heads
            # (so the claim never walks a paused queue's runs), a limited queue's
            models.Index(
                fields=["environment", "queue", "queue_timestamp", "id"],
                condition=Q(status="QUEUED"),
                name="run_claimable_queue",
            ),
            # the scheduler's sweeps
            models.Index(
                fields=["delay_until"],
                condition=Q(status="DELAYED"),
                name="run_due_delayed",
            ),
            models.Index(
                fields=["retry_at"], condition=Q(status="WAITING"), name="run_due_retry"
            ),
            models.Index(
                fields=["ttl_expires_at"],
                condition=Q(status__in=EXPIRABLE),
                name="run_due_ttl",
            ),
            models.Index(
                fields=["heartbeat_at"],
                condition=Q(status__in=HOLDING),
                name="run_heartbeat",
            ),
            models.Index(
                fields=["environment", "task_identifier"],
                condition=Q(status="PENDING_VERSION"),
                name="run_pending_version",
            ),
            # "does this batch still have an unfinished run?": one probe per batch
            models.Index(
                fields=["batch"],
                condition=Q(status__in=UNFINISHED_SORTED),
                name="run_unfinished_batch",
            ),
            # the runs list's search box: an idempotency key (as given, or its hash)
            models.Index(
                fields=["environment", "idempotency_key_user"],
                condition=Q(idempotency_key_user__isnull=False),
                name="run_env_key_user",
            ),
            models.Index(
                fields=["environment", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="run_env_key",
            ),
            # Links most runs do not have: partial, so a run without one (a queued
            # run being canceled, say) writes no entry. They serve the run page's
            # children and replays, the cascade cancel of children, the live
            # feed's run pages, and ON DELETE SET NULL.
            models.Index(
                fields=["parent", "created_at", "id"],
                condition=Q(parent__isnull=False),
                name="run_parent",
            ),
            models.Index(
                fields=["root"], condition=Q(root__isnull=False), name="run_root"
            ),
            models.Index(
                fields=["replayed_from", "created_at", "id"],
                condition=Q(replayed_from__isnull=False),
                name="run_replayed_from",
            ),
            models.Index(
                fields=["deployment"],
                condition=Q(deployment__isnull=False),
                name="run_deployment",
            ),
        ]

    def __str__(self) -> str:
        return self.friendly_id

    @classmethod
    def from_db(
        cls, db: str, field_names: list[str], values: list, *, fetch_mode=None
    ) -> Run:
        """Django's loading of a row, without Model.__init__'s walk over all 60
        fields: the loaded columns go straight into the instance's __dict__, and one
        not loaded (`only()`) is absent from it, which is what makes it deferred, as
        __init__ leaves it. Nothing listens to runs' init signals. A page of runs
        loads in half the time (a runs-list row reads 25 columns)."""
        run = cls.__new__(cls)
        run._state = ModelState()
        run._state.adding = False
        run._state.db = db
        if fetch_mode is not None:
            run._state.fetch_mode = fetch_mode
        run.__dict__.update(zip(field_names, values, strict=True))
        return run

    @property
    def progress(self) -> float | None:
        """metadata["progress"] as a 0–1 fraction, when the task reports one."""
        value = (
            self.metadata.get("progress") if isinstance(self.metadata, dict) else None
        )
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return max(0.0, min(1.0, float(value)))


class RunTag(models.Model):
    """One row per (run, tag): makes `tags any-of` an index lookup at a million runs."""

    # Indexed by the composites below only: runtag_unique leads with the run,
    # runtag_env_tag with the environment.
    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="tag_rows", db_index=False
    )
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    tag = models.CharField(max_length=128)
    created_at = models.DateTimeField()  # the run's, for ordered index scans

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "tag"], name="runtag_unique")
        ]
        indexes = [
            # a tag's runs in the runs list's order (-created_at, -id): a page of
            # a tag filter is a page's worth of entries (RunFilter.filter_tag)
            models.Index(
                fields=["environment", "tag", "-created_at", "-run"],
                name="runtag_env_tag",
            )
        ]


class AttemptStatus(models.TextChoices):
    EXECUTING = "EXECUTING", "Executing"
    COMPLETED = "COMPLETED", "Completed"
    FAILED = "FAILED", "Failed"
    CANCELED = "CANCELED", "Canceled"
    CRASHED = "CRASHED", "Crashed"
    TIMED_OUT = "TIMED_OUT", "Timed out"
    INTERRUPTED = "INTERRUPTED", "Interrupted"  # worker shut down; the run was requeued


class Attempt(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=AttemptStatus.choices, default=AttemptStatus.EXECUTING
    )
    worker_id = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "number"], name="attempt_unique_number"
            )
        ]


class RunEventKind(models.TextChoices):
    STATUS = "status", "Status change"
    LOG = "log", "Log line"
    METADATA = "metadata", "Metadata update"
    TAGS = "tags", "Tags added"


class RunEvent(models.Model):
    """The history of a run; also the ordered feed that realtime relays by id."""

    # Indexed by runevent_run (run, id) only: every status change writes an event,
    # and nothing reads events by environment (the relay reads them by id).
    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    environment_id = models.BigIntegerField()  # denormalized for the relay
    kind = models.CharField(max_length=16, choices=RunEventKind.choices)
    status = models.CharField(
        max_length=16, blank=True
    )  # new status, for STATUS events
    level = models.CharField(
        max_length=8, blank=True
    )  # debug/info/warn/error, for LOG events
    message = models.TextField(blank=True)
    attributes = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["run", "id"], name="runevent_run"),
            # pruning old metadata-change events (one per flush; see engine.retention)
            models.Index(
                fields=["created_at"],
                condition=Q(kind="metadata"),
                name="runevent_metadata_created",
            ),
        ]


class BulkActionType(models.TextChoices):
    CANCEL = "CANCEL", "Cancel"
    REPLAY = "REPLAY", "Replay"


class BulkActionStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"  # submitted, no worker has picked it up yet
    RUNNING = "RUNNING", "In progress"
    COMPLETED = "COMPLETED", "Completed"
    ABORTED = "ABORTED", "Aborted"


ACTIVE_BULK_STATUSES = (BulkActionStatus.PENDING, BulkActionStatus.RUNNING)


class BulkAction(models.Model):
    friendly_id = models.CharField(
        max_length=40, unique=True, default=new_bulk_action_id
    )
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="bulk_actions"
    )
    name = models.CharField(max_length=255, blank=True)
    type = models.CharField(max_length=8, choices=BulkActionType.choices)
    status = models.CharField(
        max_length=16,
        choices=BulkActionStatus.choices,
        default=BulkActionStatus.PENDING,
    )
    params = models.JSONField(
        default=dict
    )  # {"filter": {...}} with absolute times, or {"runIds": [...]}
    summary = models.TextField(blank=True)  # the filter in words
    use_current_version = models.BooleanField(default=True)  # replay only
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_via = models.CharField(
        max_length=16, default="dashboard"
    )  # dashboard / api
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)  # or aborted at
    aborted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    aborted_via = models.CharField(max_length=16, blank=True)  # dashboard / api
    last_error = models.TextField(
        blank=True
    )  # why the last pass failed; retried on the next
    targeted = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(
                fields=["environment", "-created_at", "-id"], name="bulk_env_created"
            ),
            # the scheduler's pass: which bulk actions still have work
            models.Index(
                fields=["created_at", "id"],
                condition=Q(status__in=["PENDING", "RUNNING"]),
                name="bulk_active",
            ),
        ]

    def __str__(self) -> str:
        return self.friendly_id

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_BULK_STATUSES


class BulkActionLane(models.Model):
    """One share of a bulk action's runs: a contiguous range of its keyset order
    (created_at, id), after `after_*` up to `until_*` (none: to the end). Lanes are
    processed in parallel (threads of a worker, or several workers); `after_*` is the
    lane's cursor and moves in the same transaction as each chunk."""

    bulk_action = models.ForeignKey(
        BulkAction, on_delete=models.CASCADE, related_name="lanes"
    )
    number = models.PositiveSmallIntegerField()
    after_created = models.DateTimeField(null=True, blank=True)
    after_id = models.BigIntegerField(null=True, blank=True)
    until_created = models.DateTimeField(null=True, blank=True)
    until_id = models.BigIntegerField(null=True, blank=True)
    done = models.BooleanField(default=False)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(
                fields=["bulk_action", "number"], name="bulklane_unique_number"
            )
        ]


class BulkActionOutcome(models.TextChoices):
    PENDING = "pending", "Not reached yet"  # in the frozen target set
    SUCCEEDED = "succeeded", "Succeeded"  # canceled, or replayed as new_run
    SKIPPED = "skipped", "Skipped"  # cancel: the run had already finished
    FAILED = "failed", "Failed"  # replay: no new run could be made (see message)


class BulkActionItem(models.Model):
    """One run of a bulk action's frozen target set: makes processing idempotent per
    run, and its outcome makes touched runs `filter[bulkAction]` findable."""

    # Both covered by the indexes below: fewer indexes to maintain while collecting.
    bulk_action = models.ForeignKey(
        BulkAction, on_delete=models.CASCADE, related_name="items", db_index=False
    )
    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="bulk_items", db_index=False
    )
    new_run = models.ForeignKey(
        Run,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # bulkitem_new_run: replays only
    )
    outcome = models.CharField(
        max_length=16,
        choices=BulkActionOutcome.choices,
        default=BulkActionOutcome.PENDING,
    )
    message = models.CharField(max_length=255, blank=True)  # why it failed
    created_at = models.DateTimeField(
        default=timezone.now
    )  # when it joined the target set
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bulk_action", "run"], name="bulkitem_unique_run"
            )
        ]
        indexes = [
            models.Index(fields=["run"], name="bulkitem_run"),
            # processing order (keyset on id) and the bulk action page's runs
            models.Index(fields=["bulk_action", "id"], name="bulkitem_bulk_order"),
            models.Index(
                fields=["new_run"],
                condition=Q(new_run__isnull=False),
                name="bulkitem_new_run",
            ),
        ]


class Packet(models.Model):
    """A large payload uploaded through a signed URL (the SDK's offload path)."""

    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="+"
    )
    path = models.CharField(max_length=1024)
    content_type = models.CharField(max_length=128, default="application/json")
    data = models.BinaryField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    uploaded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "path"], name="packet_unique_path"
            )
        ]


class TestTemplate(models.Model):
    """A saved Test page configuration, per task and environment."""

    __test__ = False  # not a pytest class, despite the name

    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="+"
    )
    task_identifier = models.CharField(max_length=128)
    name = models.CharField(max_length=100)
    payload = models.TextField(blank=True)
    metadata = models.TextField(blank=True)
    options = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "task_identifier", "name"],
                name="template_unique_name",
            )
        ]


class IdempotentRequest(models.Model):
    """The first answer to an API call carrying x-trigger-request-idempotency-key."""

    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="+"
    )
    key = models.CharField(max_length=255)
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "key"], name="request_unique_key"
            )
        ]
        # pruning answers past their TTL
        indexes = [models.Index(fields=["created_at"], name="request_created")]
