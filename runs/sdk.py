"""The Python task SDK: `from runs.sdk import task, metadata, logger`.

    @task(id="email-sequence", retry={"maxAttempts": 5}, max_duration=300)
    def email_sequence(payload, ctx):
        metadata.set("progress", 0.5)
        logger.info("half way", step=2)
        return {"ok": True}

    email_sequence.trigger({"to": "ada@example.com"}, tags=["user_1"])

Inside a run, the attempt process talks to its worker over a pipe (`_RunChannel`):
metadata operations and log lines are buffered and flushed a few times a second,
triggers are requests the worker answers. Outside a run, metadata and logger calls are
no-ops and triggers go straight to the trigger service.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from runs.deployments import DEFAULT_RETRY, TaskSpec

FLUSH_INTERVAL = 0.25
_TASK_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class MetadataTooLarge(ValueError):
    """Raised by a metadata call that would make the run's metadata exceed the limit
    (256 KiB by default); the run fails without retrying."""


class AbortTaskRunError(Exception):
    """Raise it from a task to fail the run at once, without using the remaining
    attempts (e.g. the payload can never succeed)."""


def metadata_limit() -> int:
    from django.conf import settings

    return settings.RUNWATCH_METADATA_MAX_BYTES


class TaskRunFailed(RuntimeError):
    """trigger_and_wait: the child run did not complete successfully."""

    def __init__(self, run_id: str, status: str, error: dict | None) -> None:
        message = (error or {}).get("message") or status
        super().__init__(f"Child run {run_id} ended {status}: {message}")
        self.run_id, self.status, self.error = run_id, status, error


# --- run context ------------------------------------------------------------------


@dataclass(frozen=True)
class RunInfo:
    id: str
    tags: list[str]
    is_test: bool
    created_at: str


@dataclass(frozen=True)
class Context:
    """`ctx`, the second argument of a task function."""

    run: RunInfo
    attempt: int
    task: str
    environment: str
    version: str
    queue: str
    machine: str

    @property
    def is_test(self) -> bool:
        return self.run.is_test


# One writer at a time on the pipe to the worker: the flusher thread, task threads
# and the attempt's final result all send on it.
send_lock = threading.Lock()


class _RunChannel:
    """The attempt process's link to its worker (set only inside a run)."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.lock = send_lock
        self.pending_ops: dict[str, list[dict]] = {"self": [], "parent": [], "root": []}
        self.pending_logs: list[dict] = []

    def add_op(self, which: str, op: dict) -> None:
        with self.lock:
            self.pending_ops[which].append(op)

    def add_log(self, line: dict) -> None:
        with self.lock:
            self.pending_logs.append(line)

    def request(self, message: tuple) -> Any:
        """Send a request and wait for the worker's answer (one request at a time)."""
        with self.lock:
            self._flush_locked()
            self.conn.send(message)
            kind, value = self.conn.recv()
        if kind == "error":
            raise RuntimeError(value)
        return value

    def flush(self) -> None:
        with self.lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        ops, logs = self.pending_ops, self.pending_logs
        if any(ops.values()) or logs:
            self.conn.send(("flush", ops, logs))
            self.pending_ops = {"self": [], "parent": [], "root": []}
            self.pending_logs = []


_channel: _RunChannel | None = None
_context: Context | None = None


def _enter_run(conn, ctx: Context, initial_metadata: dict) -> None:
    """Called by the attempt process before running a task function."""
    global _channel, _context
    _channel = _RunChannel(conn)
    _context = ctx
    metadata._store = json.loads(json.dumps(initial_metadata or {}))


def _leave_run() -> None:
    global _channel, _context
    if _channel is not None:
        _channel.flush()
    _channel = None
    _context = None
    metadata._store = {}


def current_context() -> Context | None:
    return _context


# --- metadata ----------------------------------------------------------------------


class _MetadataTarget:
    """metadata.parent / metadata.root: operations sent to another run."""

    def __init__(self, which: str) -> None:
        self.which = which

    def _op(self, op: dict) -> _MetadataTarget:
        if _channel is not None:
            _channel.add_op(self.which, op)
        return self

    def set(self, key: str, value: Any) -> _MetadataTarget:
        return self._op({"type": "set", "key": key, "value": value})

    def delete(self, key: str) -> _MetadataTarget:
        return self._op({"type": "delete", "key": key})

    def append(self, key: str, value: Any) -> _MetadataTarget:
        return self._op({"type": "append", "key": key, "value": value})

    def remove(self, key: str, value: Any) -> _MetadataTarget:
        return self._op({"type": "remove", "key": key, "value": value})

    def increment(self, key: str, value: float = 1) -> _MetadataTarget:
        return self._op({"type": "increment", "key": key, "value": value})

    def decrement(self, key: str, value: float = 1) -> _MetadataTarget:
        return self._op({"type": "increment", "key": key, "value": -abs(value)})

    def replace(self, value: dict) -> _MetadataTarget:
        return self._op({"type": "update", "value": value})


class _Metadata(_MetadataTarget):
    """`metadata`: the current run's metadata, applied locally and flushed to the worker."""

    def __init__(self) -> None:
        super().__init__("self")
        self._store: dict = {}
        self.parent = _MetadataTarget("parent")
        self.root = _MetadataTarget("root")

    def _op(self, op: dict) -> _Metadata:
        if _channel is None:
            return self  # outside a run: a no-op, like Trigger.dev's SDK
        from runs.metadata import apply_operations

        new, changed = apply_operations(self._store, [op])
        if not changed:
            return self
        size = len(json.dumps(new, separators=(",", ":")).encode())
        limit = metadata_limit()
        if size > limit:
            raise MetadataTooLarge(
                f"Metadata exceeds maximum size of {limit} bytes ({size} bytes)"
            )
        self._store = new
        _channel.add_op("self", op)
        return self

    def get(self, key: str, default: Any = None) -> Any:
        return self._store.get(key, default)

    def current(self) -> dict:
        return json.loads(json.dumps(self._store))

    def flush(self) -> None:
        if _channel is not None:
            _channel.flush()


metadata = _Metadata()


# --- logger ------------------------------------------------------------------------


class _Logger:
    """`logger`: log lines stored on the run (shown on the run page)."""

    def _log(self, level: str, message: str, attributes: dict) -> None:
        if _channel is None:
            return
        _channel.add_log(
            {
                "level": level,
                "message": str(message),
                "attributes": _jsonable(attributes),
            }
        )

    def debug(self, message: str, **attributes: Any) -> None:
        self._log("debug", message, attributes)

    def info(self, message: str, **attributes: Any) -> None:
        self._log("info", message, attributes)

    def warn(self, message: str, **attributes: Any) -> None:
        self._log("warn", message, attributes)

    warning = warn

    def error(self, message: str, **attributes: Any) -> None:
        self._log("error", message, attributes)


logger = _Logger()


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# --- tasks -------------------------------------------------------------------------


@dataclass(frozen=True)
class RunHandle:
    id: str
    is_cached: bool = False


@dataclass
class Task:
    id: str
    function: Callable[[Any, Context], Any]
    retry: dict = field(default_factory=lambda: dict(DEFAULT_RETRY))
    max_duration: int | None = None
    queue: str = ""
    queue_concurrency_limit: int | None = None
    machine: str = "small-1x"

    def __call__(self, payload: Any, ctx: Context) -> Any:
        return self.function(payload, ctx)

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec(
            slug=self.id,
            module=self.function.__module__,
            function=self.function.__qualname__,
            queue=self.queue,
            retry=self.retry,
            max_duration=self.max_duration,
            machine=self.machine,
            queue_concurrency_limit=self.queue_concurrency_limit,
        )

    def trigger(
        self, payload: Any = None, *, environment: str | None = None, **options: Any
    ) -> RunHandle:
        """Trigger a run of this task. Options: delay, ttl, tags, idempotency_key,
        idempotency_key_ttl, metadata, max_attempts, max_duration, queue,
        concurrency_key, priority, machine, version, test."""
        return _trigger(self.id, payload, environment, options, wait=False)

    def trigger_and_wait(self, payload: Any = None, **options: Any) -> Any:
        """Inside a task: trigger a child run, wait for it, return its output.
        Raises TaskRunFailed when the child does not complete."""
        return _trigger(self.id, payload, None, options, wait=True)

    def batch_trigger(
        self, payloads: Iterable[Any], *, environment: str | None = None, **options: Any
    ) -> list[RunHandle]:
        return batch_trigger(
            [(self.id, p, options) for p in payloads], environment=environment
        )


_registry: dict[str, Task] = {}

# Python spellings accepted in @task(retry=...), stored in Trigger.dev's names.
_RETRY_KEYS = {
    "max_attempts": "maxAttempts",
    "factor": "factor",
    "min_timeout_ms": "minTimeoutInMs",
    "max_timeout_ms": "maxTimeoutInMs",
    "randomize": "randomize",
}


def _retry_policy(retry: dict | None) -> dict:
    policy = dict(DEFAULT_RETRY)
    for key, value in (retry or {}).items():
        name = _RETRY_KEYS.get(key, key)
        if name not in DEFAULT_RETRY:
            raise ValueError(
                f"Unknown retry option {key!r} (use {', '.join(_RETRY_KEYS)})"
            )
        policy[name] = value
    if not isinstance(policy["maxAttempts"], int) or policy["maxAttempts"] < 1:
        raise ValueError("retry max_attempts must be an integer ≥ 1")
    return policy


def task(
    id: str,
    *,
    retry: dict | None = None,
    max_duration: int | None = None,
    queue: str = "",
    queue_concurrency_limit: int | None = None,
    machine: str = "small-1x",
) -> Callable[[Callable], Task]:
    """Declare a task. `retry`: max_attempts, factor, min_timeout_ms, max_timeout_ms,
    randomize (Trigger.dev's camelCase names work too). `max_duration`: seconds of
    compute per attempt (at least 5). `queue_concurrency_limit`: at most this many
    runs of the queue execute at once, across all workers."""
    if not _TASK_ID.match(id):
        raise ValueError(f"Task id {id!r} must be kebab-case (e.g. 'email-sequence')")
    policy = _retry_policy(retry)

    def decorate(function: Callable) -> Task:
        existing = _registry.get(id)
        if existing is not None and existing.function.__module__ != function.__module__:
            raise ValueError(
                f"Task id {id!r} is already used by {existing.function.__module__}"
            )
        t = Task(
            id=id,
            function=function,
            retry=policy,
            max_duration=max_duration,
            queue=queue,
            queue_concurrency_limit=queue_concurrency_limit,
            machine=machine,
        )
        _registry[id] = t
        return t

    return decorate


def registered_tasks() -> dict[str, Task]:
    return dict(_registry)


def _trigger_options(options: dict[str, Any]):
    from runs.triggering import TriggerOptions

    opts = dict(options)
    if "version" in opts:
        opts["lock_to_version"] = opts.pop("version") or ""
    return TriggerOptions(**opts)


def _trigger(
    task_id: str, payload: Any, environment: str | None, options: dict, *, wait: bool
) -> Any:
    if _channel is not None:
        if environment is not None:
            raise ValueError(
                "Inside a run, child runs are triggered in the run's own environment"
            )
        run_id, cached = _channel.request(("trigger", task_id, payload, options, wait))
        if not wait:
            return RunHandle(run_id, cached)
        status, output, error = _channel.request(("wait", run_id))
        if status != "COMPLETED":
            raise TaskRunFailed(run_id, status, error)
        return output
    if wait:
        raise RuntimeError("trigger_and_wait can only be used inside a task run")
    from runs.models import Environment
    from runs.triggering import trigger

    env = Environment.objects.get(
        slug=environment or os.environ.get("RUNWATCH_ENV", "dev")
    )
    run, cached = trigger(env, task_id, payload, _trigger_options(options))
    return RunHandle(run.friendly_id, cached)


def batch_trigger(
    items: Iterable[tuple[str, Any, dict] | tuple[str, Any]],
    *,
    environment: str | None = None,
) -> list[RunHandle]:
    """Trigger several runs (possibly of different tasks) in one batch:
    `batch_trigger([("task-a", payload), ("task-b", payload, {"tags": [...]})])`."""
    normalized = [
        (item[0], item[1], item[2] if len(item) > 2 else {}) for item in items
    ]
    if _channel is not None:
        results = _channel.request(("batch", normalized))
        return [RunHandle(run_id, cached) for run_id, cached in results]
    from runs.models import Environment
    from runs.triggering import BatchItem
    from runs.triggering import batch_trigger as batch_trigger_service

    env = Environment.objects.get(
        slug=environment or os.environ.get("RUNWATCH_ENV", "dev")
    )
    _, runs, cached = batch_trigger_service(
        env,
        [
            BatchItem(task_id, payload, options=_trigger_options(opts))
            for task_id, payload, opts in normalized
        ],
    )
    return [RunHandle(r.friendly_id, cached) for r in runs]
