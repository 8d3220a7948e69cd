"""Creating runs: trigger one, batch trigger, replay. Used by the SDK, the API, the
dashboard's Test page and bulk replay alike."""

from __future__ import annotations

import json
import secrets
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from runs import packets, receipts
from runs.bulkinsert import insert_objects, new_instance
from runs.deployments import find_task
from runs.durations import (
    InvalidDuration,
    parse_delay,
    parse_duration_seconds,
    parse_idempotency_ttl,
    parse_ttl,
)
from runs.environments import has_key, key_digest
from runs.errors import (
    InvalidInput,
    KeyRevoked,
    NotFound,
    RunError,
    TooLarge,
    Unprocessable,
)
from runs.lifecycle import record_events
from runs.models import (
    Batch,
    BatchStatus,
    Environment,
    EnvironmentType,
    Run,
    RunEvent,
    RunEventKind,
    RunTag,
)
from runs.receipts import Receipt
from runs.statuses import FAILED, RunStatus
from runs.trigger_sql import NOT_CHECKED, Conditions, current_tasks, insert_run

TRIGGERED_MESSAGE = "Run triggered"
MAX_TAGS = 10
MAX_TAG_LENGTH = 128
MACHINES = (
    "micro",
    "small-1x",
    "small-2x",
    "medium-1x",
    "medium-2x",
    "large-1x",
    "large-2x",
)
MAX_DURATION_RANGE = (5, 2_147_483_647)
MAX_ATTEMPTS_RANGE = (1, 2_147_483_647)
PRIORITY_MS_RANGE = (-(2**31), 2**31 - 1)  # priority_ms is a 32-bit column


@dataclass
class TriggerOptions:
    """Everything a trigger may set; names follow the Python SDK (snake_case)."""

    payload_type: str = packets.JSON
    queue: str = ""
    concurrency_key: str | None = None
    delay: str | datetime | None = None
    ttl: str | int | None = None
    idempotency_key: str | None = None
    idempotency_key_user: str | None = None
    idempotency_key_ttl: str | None = None
    machine: str = ""
    max_attempts: int | None = None
    max_duration: int | None = None
    metadata: dict | None = None
    tags: list[str] | str | None = None
    test: bool = False
    priority: float = 0
    lock_to_version: str = ""
    parent_run_id: str | None = None
    resume_parent_on_completion: bool = False
    replayed_from: Run | None = None
    batch: Batch | None = None
    batch_index: int | None = None
    extra_events: list[str] = field(default_factory=list)


def default_ttl(environment: Environment) -> str | None:
    """The TTL of a run triggered without one: 10 minutes in development (as in
    Trigger.dev, so a stopped dev worker does not pile up runs), none elsewhere."""
    return "10m" if environment.type == EnvironmentType.DEVELOPMENT else None


def normalize_tags(tags: list[str] | str | None) -> list[str]:
    """Drop blanks and duplicates, enforce 10 × 128 chars; sorted as the API returns them."""
    if tags is None:
        return []
    items = [tags] if isinstance(tags, str) else list(tags)
    clean: list[str] = []
    for tag in items:
        if not isinstance(tag, str):
            raise InvalidInput("Tags must be strings", field="tags")
        tag = tag.strip()
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise InvalidInput("Tags must be less than 128 characters", field="tags")
        if tag not in clean:
            clean.append(tag)
    if len(clean) > MAX_TAGS:
        raise Unprocessable(
            f"Runs can only have 10 tags, you're trying to set {len(clean)}.",
            field="tags",
        )
    return sorted(clean)


def check_metadata_size(metadata: Any) -> None:
    size = len(json.dumps(metadata, separators=(",", ":")).encode())
    limit = settings.RUNWATCH_METADATA_MAX_BYTES
    if size > limit:
        raise TooLarge(
            f"Metadata exceeds maximum size of {limit} bytes", field="metadata"
        )


def check_payload_size(data: str) -> None:
    limit = settings.RUNWATCH_PAYLOAD_MAX_BYTES
    if packets.byte_size(data) > limit:
        raise TooLarge(
            f"Payload exceeds maximum size of {limit} bytes", field="payload"
        )


def check_max_attempts(value: Any) -> None:
    low, high = MAX_ATTEMPTS_RANGE
    if not isinstance(value, int) or value < low:
        raise InvalidInput("maxAttempts must be an integer ≥ 1", field="maxAttempts")
    if value > high:
        raise InvalidInput(f"maxAttempts must be at most {high}", field="maxAttempts")


@dataclass
class _Prepared:
    """A validated trigger, ready to become a Run row."""

    run: Run
    tags: list[str]


def _prepare(
    environment: Environment,
    task_identifier: str,
    payload: str,
    options: TriggerOptions,
    now,
    lookups: dict | None = None,
) -> _Prepared:
    if not task_identifier:
        raise InvalidInput("A task identifier is required", field="task")
    check_payload_size(payload)
    if options.payload_type == packets.STORE and not payload:
        raise InvalidInput(
            "payload must be a storage path when payloadType is application/store",
            field="payload",
        )
    tags = normalize_tags(options.tags)
    metadata = options.metadata if options.metadata is not None else {}
    if not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a JSON object", field="metadata")
    check_metadata_size(metadata)
    if options.machine and options.machine not in MACHINES:
        raise InvalidInput(
            f"Invalid machine preset: {options.machine} (one of {', '.join(MACHINES)})",
            field="machine",
        )
    if options.max_attempts is not None:
        check_max_attempts(options.max_attempts)
    try:
        ttl = parse_ttl(options.ttl)
    except InvalidDuration as exc:
        raise InvalidInput(str(exc), field="ttl") from None

    # A batch looks each task (and parent) up once, not once per item.
    lookups = {} if lookups is None else lookups
    task_key = ("task", task_identifier, options.lock_to_version)
    if task_key not in lookups:
        lookups[task_key] = find_task(
            environment, task_identifier, options.lock_to_version
        )
    task = lookups[task_key]
    if options.lock_to_version and task is None:
        raise Unprocessable(
            f"Version {options.lock_to_version} of task {task_identifier} was not found",
            field="version",
        )
    if ttl is None:
        ttl = default_ttl(environment)

    parent = None
    if options.parent_run_id:
        parent_key = ("parent", options.parent_run_id)
        if parent_key not in lookups:
            lookups[parent_key] = Run.objects.filter(
                environment=environment, friendly_id=options.parent_run_id
            ).first()
        parent = lookups[parent_key]
        if parent is None:
            raise Unprocessable(
                f"Parent run {options.parent_run_id} was not found", field="parentRunId"
            )

    delay_until = parse_delay(options.delay, now=now)
    if task is None:
        status = RunStatus.PENDING_VERSION
    elif delay_until:
        status = RunStatus.DELAYED
    else:
        status = RunStatus.QUEUED
    queued = status == RunStatus.QUEUED
    priority_ms = max(
        PRIORITY_MS_RANGE[0],
        min(PRIORITY_MS_RANGE[1], round((options.priority or 0) * 1000)),
    )
    max_duration = (
        options.max_duration
        if options.max_duration is not None
        else (task.max_duration if task else None)
    )
    if max_duration is not None:
        max_duration = max(
            MAX_DURATION_RANGE[0], min(MAX_DURATION_RANGE[1], int(max_duration))
        )
    retry = task.retry if task else {}
    key_expires = (
        now + parse_idempotency_ttl(options.idempotency_key_ttl)
        if options.idempotency_key
        else None
    )
    ttl_base = delay_until or now

    run = new_instance(
        Run,
        environment=environment,
        task_identifier=task_identifier,
        status=status,
        payload=payload,
        payload_type=options.payload_type or packets.JSON,
        metadata=metadata,
        seed_metadata=metadata or None,
        metadata_updated_at=now if metadata else None,
        tags=tags,
        idempotency_key=options.idempotency_key or None,
        idempotency_key_user=options.idempotency_key_user
        or options.idempotency_key
        or None,
        idempotency_key_expires_at=key_expires,
        ttl=ttl,
        ttl_expires_at=ttl_base + timedelta(seconds=parse_duration_seconds(ttl))
        if ttl
        else None,
        delay_until=delay_until,
        created_at=now,
        updated_at=now,
        queued_at=now if queued else None,
        queue_timestamp=(now - timedelta(milliseconds=priority_ms)) if queued else None,
        is_test=bool(options.test),
        deployment=task.deployment if task and options.lock_to_version else None,
        version=task.deployment.version if task and options.lock_to_version else "",
        lock_to_version=options.lock_to_version or "",
        batch=options.batch,
        batch_index=options.batch_index,
        parent=parent,
        root_id=(parent.root_id or parent.pk) if parent else None,
        depth=parent.depth + 1 if parent else 0,
        resume_parent_on_completion=bool(options.resume_parent_on_completion),
        replayed_from=options.replayed_from,
        max_attempts=options.max_attempts or retry.get("maxAttempts") or 3,
        max_duration=max_duration,
        queue=options.queue or (task.queue if task else f"task/{task_identifier}"),
        concurrency_key=str(options.concurrency_key)
        if options.concurrency_key not in (None, "")
        else None,
        machine=options.machine or (task.machine if task else "small-1x"),
        priority_ms=priority_ms,
    )
    return _Prepared(run=run, tags=tags)


def _existing_for_key(
    environment: Environment, task_identifier: str, key: str, now
) -> Run | None:
    """The run holding an idempotency key, or None. Clears a key that should no longer
    dedupe (expired, or its run failed or expired) so a new run can take it."""
    existing = Run.objects.filter(
        environment=environment, task_identifier=task_identifier, idempotency_key=key
    ).first()
    if existing is None:
        return None
    expired = (
        existing.idempotency_key_expires_at
        and existing.idempotency_key_expires_at <= now
    )
    if expired or existing.status in FAILED or existing.status == RunStatus.EXPIRED:
        Run.objects.filter(pk=existing.pk).update(idempotency_key=None)
        return None
    return existing


def reserve_run_numbers(environment: Environment, count: int) -> int:
    """Take `count` sequential run numbers; returns the first. Locks the environment row
    until commit, which also serializes idempotency checks per environment."""
    table = Environment._meta.db_table
    with transaction.get_connection().cursor() as cursor:
        # One round trip (UPDATE … RETURNING): the lock is held from here to commit.
        cursor.execute(
            f'UPDATE "{table}" SET "next_run_number" = "next_run_number" + %s '
            f'WHERE "id" = %s RETURNING "next_run_number"',
            [count, environment.pk],
        )
        (after,) = cursor.fetchone()
    return after - count


def _insert_numbered(
    environment: Environment, prepared: list[_Prepared], now
) -> list[Run]:
    """Insert prepared runs with the environment's next sequential numbers.

    On PostgreSQL the runs go in with placeholder numbers and get their real ones in
    the transaction's last statement, so the environment row (the counter) stays
    locked for one statement and the commit rather than for the whole insert:
    concurrent triggers of one environment otherwise queue behind each other."""
    if not prepared:
        return []
    if connection_vendor() != "postgresql":
        first = reserve_run_numbers(environment, len(prepared))
        for offset, item in enumerate(prepared):
            item.run.number = first + offset
        return _insert(prepared, now)
    for item in prepared:
        item.run.number = -secrets.randbits(62) - 1  # unique while in flight
    runs = _insert(prepared, now)
    first = _number_inserted(environment, [run.pk for run in runs])
    for offset, run in enumerate(runs):
        run.number = first + offset
    return runs


def _number_inserted(environment: Environment, run_ids: list[int]) -> int:
    """One statement: take len(run_ids) numbers and write them in order. Returns the first."""
    env_table, run_table = Environment._meta.db_table, Run._meta.db_table
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(
            f'WITH n AS (UPDATE "{env_table}" SET "next_run_number" = "next_run_number" + %s '
            f'WHERE "id" = %s RETURNING "next_run_number" - %s AS first) '
            f'UPDATE "{run_table}" SET "number" = n.first + v.o '
            f"FROM n, unnest(%s::bigint[], %s::bigint[]) AS v(id, o) "
            f'WHERE "{run_table}"."id" = v.id RETURNING n.first',
            [
                len(run_ids),
                environment.pk,
                len(run_ids),
                run_ids,
                list(range(len(run_ids))),
            ],
        )
        (first,) = cursor.fetchone()
    return first


def connection_vendor() -> str:
    return transaction.get_connection().vendor


def in_transaction() -> bool:
    return transaction.get_connection().in_atomic_block


def _lock_environment(environment: Environment) -> None:
    list(
        Environment.objects.select_for_update()
        .filter(pk=environment.pk)
        .values_list("pk", flat=True)
    )


def _insert(prepared: list[_Prepared], now) -> list[Run]:
    runs = insert_objects(Run, [p.run for p in prepared])
    insert_objects(
        RunTag,
        [
            RunTag(run=run, environment_id=run.environment_id, tag=tag, created_at=now)
            for run, p in zip(runs, prepared, strict=True)
            for tag in p.tags
        ],
    )
    record_events(
        [
            RunEvent(
                run=run,
                environment_id=run.environment_id,
                kind=RunEventKind.STATUS,
                status=run.status,
                message=TRIGGERED_MESSAGE,
                created_at=now,
            )
            for run in runs
        ]
    )
    return runs


def trigger(
    environment: Environment,
    task_identifier: str,
    payload: Any = None,
    options: TriggerOptions | None = None,
    *,
    raw_payload: str | None = None,
    receipt: Receipt | None = None,
    require_key: str | None = None,
) -> tuple[Run, bool]:
    """Create a run of `task_identifier`. Returns (run, is_cached): with an idempotency
    key that an existing run holds, that run is returned and nothing is created.

    `payload` is a Python/JSON value; pass `raw_payload` instead for a packet already
    serialized in `options.payload_type` (superjson, text, a storage path).
    `receipt`: store the caller's answer with the run (`runs.receipts`); raises
    AlreadyAnswered, writing nothing, when a live answer holds its key.
    `require_key`: only while the environment still has this API key (KeyRevoked
    otherwise), checked in the same statement or transaction as the write.
    """
    options = options or TriggerOptions()
    data = raw_payload if raw_payload is not None else packets.encode_value(payload)[0]
    now = timezone.now()
    if connection_vendor() == "postgresql" and not options.idempotency_key:
        run = _trigger_in_one_statement(
            environment, task_identifier, data, options, now, receipt, require_key
        )
        return run, False
    for _ in range(3):
        try:
            with transaction.atomic():
                if require_key is not None and not has_key(environment.pk, require_key):
                    raise KeyRevoked()
                run, cached = _trigger_in_transaction(
                    environment, task_identifier, data, options, now
                )
                if receipt is not None:
                    receipts.store(environment, receipt, run, cached)
                return run, cached
        except IntegrityError:
            # A concurrent trigger took the idempotency key first: answer with its run.
            if not options.idempotency_key:
                raise
            existing = _existing_for_key(
                environment, task_identifier, options.idempotency_key, timezone.now()
            )
            if existing is not None:
                if receipt is None:
                    return existing, True
                with transaction.atomic():
                    receipts.store(environment, receipt, existing, True)
                return existing, True
    raise Unprocessable("Could not trigger the run, please retry")


def _trigger_in_transaction(
    environment: Environment,
    task_identifier: str,
    data: str,
    options: TriggerOptions,
    now,
) -> tuple[Run, bool]:
    prepared = _prepare(environment, task_identifier, data, options, now)
    if options.idempotency_key:
        # The environment row lock serializes triggers with a key, so the
        # check sees any run a concurrent trigger just committed.
        _lock_environment(environment)
        existing = _existing_for_key(
            environment, task_identifier, options.idempotency_key, now
        )
        if existing is not None:
            return existing, True
    return _insert_numbered(environment, [prepared], now)[0], False


def _trigger_in_one_statement(
    environment: Environment,
    task_identifier: str,
    data: str,
    options: TriggerOptions,
    now,
    receipt: Receipt | None,
    require_key: str | None,
) -> Run:
    """`trigger` without an idempotency key on PostgreSQL: the task definition from
    the per-process cache, the run (with its receipt) written by one statement
    that also checks the key (runs.trigger_sql)."""
    digest = key_digest(require_key) if require_key is not None else None
    for _ in range(3):
        lookups: dict = {}
        deployment_id: object = NOT_CHECKED
        if not options.lock_to_version:
            deployment_id, task = current_tasks.get(environment, task_identifier)
            lookups[("task", task_identifier, "")] = task
        prepared = _prepare(environment, task_identifier, data, options, now, lookups)
        conditions = Conditions(
            deployment_id, digest, _receipt_row(receipt, prepared.run)
        )
        try:
            # In a caller's transaction a racing receipt's error must not break it.
            with (
                transaction.atomic() if receipt and in_transaction() else nullcontext()
            ):
                run = insert_run(
                    prepared.run, prepared.tags, TRIGGERED_MESSAGE, conditions
                )
        except IntegrityError:
            if receipt is not None:  # a racing attempt with the key came first?
                receipts.raise_if_answered(environment, receipt.key)
            raise
        if run is not None:
            return run
        _nothing_written(environment, task_identifier, receipt, require_key)
    raise Unprocessable("Could not trigger the run, please retry")


def _receipt_row(receipt: Receipt | None, run: Run) -> tuple[str, int, str] | None:
    if receipt is None:
        return None
    status, body = receipt.answer(run, False)
    return receipt.key, status, json.dumps(body, separators=(",", ":"))


def _nothing_written(
    environment: Environment,
    task_identifier: str,
    receipt: Receipt | None,
    require_key: str | None,
) -> None:
    """Why the statement wrote nothing: raises for a revoked key or a live answer;
    otherwise another process deployed meanwhile (or an expired answer, now
    deleted, held the request key) and the caller tries again."""
    if require_key is not None and not has_key(environment.pk, require_key):
        raise KeyRevoked()
    if receipt is not None:
        receipts.raise_if_answered(environment, receipt.key)
    current_tasks.forget(environment, task_identifier)


@dataclass
class BatchItem:
    task_identifier: str
    payload: Any = None
    raw_payload: str | None = None
    options: TriggerOptions = field(default_factory=TriggerOptions)


def batch_trigger(
    environment: Environment,
    items: list[BatchItem],
    *,
    batch: Batch | None = None,
    idempotency_key: str | None = None,
    seal: bool = True,
) -> tuple[Batch, list[Run], bool]:
    """Trigger many runs in one transaction with one batch row. All or nothing: an
    invalid item raises and nothing is written. Returns (batch, runs, is_cached).
    `seal=False` adds items to an open streamed batch (see runs.batch_streams)."""
    limit = settings.RUNWATCH_BATCH_MAX_ITEMS
    if not items:
        raise InvalidInput("Batch cannot be triggered with no items")
    if len(items) > limit:
        raise InvalidInput(
            f"Batch size of {len(items)} is too large. Maximum allowed batch size is {limit}."
        )
    now = timezone.now()
    with transaction.atomic():
        if idempotency_key and batch is None:
            cached = Batch.objects.filter(
                environment=environment, idempotency_key=idempotency_key
            ).first()
            if cached is not None:
                return cached, list(cached.runs.order_by("batch_index", "id")), True
        if batch is None:
            batch = Batch.objects.create(
                environment=environment,
                run_count=len(items),
                idempotency_key=idempotency_key,
                idempotency_key_expires_at=now + timedelta(days=30)
                if idempotency_key
                else None,
            )
        runs: list[Run | None] = [None] * len(items)
        lookups: dict = {}
        fresh: list[tuple[int, _Prepared]] = []
        cached_items: dict[str, str] = {}
        for index, item in enumerate(items):
            opts = replace(
                item.options,
                batch=batch,
                batch_index=item.options.batch_index
                if item.options.batch_index is not None
                else index,
            )
            if opts.idempotency_key:
                existing = _existing_for_key(
                    environment, item.task_identifier, opts.idempotency_key, now
                )
                if existing is not None:
                    runs[index] = existing
                    cached_items[str(opts.batch_index)] = existing.friendly_id
                    continue
            data = (
                item.raw_payload
                if item.raw_payload is not None
                else packets.encode_value(item.payload)[0]
            )
            fresh.append(
                (
                    index,
                    _prepare(
                        environment, item.task_identifier, data, opts, now, lookups
                    ),
                )
            )
        created = _insert_numbered(environment, [p for _, p in fresh], now)
        for (index, _), run in zip(fresh, created, strict=True):
            runs[index] = run
        if cached_items:
            batch.cached_items = {**batch.cached_items, **cached_items}
            Batch.objects.filter(pk=batch.pk).update(cached_items=batch.cached_items)
        if seal:
            Batch.objects.filter(pk=batch.pk).update(
                status=BatchStatus.PENDING, sealed=True, processing_completed_at=now
            )
    return batch, [r for r in runs if r is not None], False


def reset_idempotency_key(
    environment: Environment, task_identifier: str, key: str
) -> int:
    """Release an idempotency key so the next trigger with it creates a new run.
    Matches the stored key or its user-facing form. Returns how many runs held it;
    NotFound when none did."""
    released = (
        Run.objects.filter(environment=environment, task_identifier=task_identifier)
        .filter(idempotency_key__isnull=False)
        .filter(models.Q(idempotency_key=key) | models.Q(idempotency_key_user=key))
        .update(idempotency_key=None, idempotency_key_expires_at=None)
    )
    if not released:
        raise NotFound(f"No run of {task_identifier} holds the idempotency key {key}")
    return released


def get_run(environment: Environment, friendly_id: str) -> Run:
    try:
        return Run.objects.get(environment=environment, friendly_id=friendly_id)
    except Run.DoesNotExist:
        raise NotFound("Run not found") from None


@dataclass
class ReplayOverrides:
    """What a replay may change; None keeps the original's value."""

    payload: Any = None
    raw_payload: str | None = None
    payload_type: str | None = None
    metadata: dict | None = None
    tags: list[str] | str | None = None
    queue: str | None = None
    concurrency_key: str | None = None
    machine: str | None = None
    version: str | None = None
    delay: str | datetime | None = None
    ttl: str | int | None = None
    idempotency_key: str | None = None
    idempotency_key_ttl: str | None = None
    max_attempts: int | None = None
    max_duration: int | None = None
    priority: float | None = None
    environment: Environment | None = None


def _replay_options(
    run: Run, o: ReplayOverrides, *, same_env: bool, use_current_version: bool
) -> TriggerOptions:
    if o.raw_payload is not None or o.payload is not None:
        payload_type = o.payload_type or packets.JSON
    else:
        payload_type = run.payload_type
    version = (
        o.version
        if o.version is not None
        else ("" if use_current_version or not same_env else run.version)
    )
    return TriggerOptions(
        payload_type=payload_type,
        queue=o.queue if o.queue is not None else run.queue,
        concurrency_key=o.concurrency_key
        if o.concurrency_key is not None
        else run.concurrency_key,
        delay=o.delay,
        ttl=o.ttl,
        idempotency_key=o.idempotency_key,
        idempotency_key_ttl=o.idempotency_key_ttl,
        machine=o.machine if o.machine is not None else run.machine,
        max_attempts=o.max_attempts,
        max_duration=o.max_duration,
        metadata=o.metadata if o.metadata is not None else (run.seed_metadata or {}),
        tags=o.tags if o.tags is not None else run.tags,
        test=run.is_test,
        priority=o.priority or 0,
        lock_to_version=version,
        replayed_from=run if same_env else None,
    )


def replay(
    run: Run,
    overrides: ReplayOverrides | None = None,
    *,
    use_current_version: bool = True,
) -> Run:
    """A new run of the same task with the original's payload and options (each may be
    overridden), linked to the original. Works on a run in any status."""
    o = overrides or ReplayOverrides()
    environment = o.environment or run.environment
    same_env = environment.pk == run.environment_id
    if o.raw_payload is not None or o.payload is not None:
        raw = (
            o.raw_payload
            if o.raw_payload is not None
            else packets.encode_value(o.payload)[0]
        )
    else:
        raw = run.payload
    options = _replay_options(
        run, o, same_env=same_env, use_current_version=use_current_version
    )
    new_run, _ = trigger(
        environment, run.task_identifier, options=options, raw_payload=raw
    )
    return new_run


def replay_many(
    environment: Environment, runs: list[Run], *, use_current_version: bool = True
) -> dict[int, Run | RunError]:
    """Set-based `replay` of many runs of one environment (bulk replay): one number
    reservation and bulk inserts of runs, tags and events, with task lookups shared.
    Returns, per original run id, its new run or the error that prevented it (that
    run gets no replay; the others still do). Call it inside a transaction."""
    now = timezone.now()
    lookups: dict = {}
    outcome: dict[int, Run | RunError] = {}
    prepared: list[tuple[int, _Prepared]] = []
    none = ReplayOverrides()
    for run in runs:
        options = _replay_options(
            run, none, same_env=True, use_current_version=use_current_version
        )
        try:
            item = _prepare(
                environment, run.task_identifier, run.payload, options, now, lookups
            )
        except RunError as exc:
            outcome[run.pk] = exc
            continue
        prepared.append((run.pk, item))
    if prepared:
        created = _insert_numbered(environment, [item for _, item in prepared], now)
        for (original, _), new_run in zip(prepared, created, strict=True):
            outcome[original] = new_run
    return outcome
