"""One trigger as one statement on PostgreSQL (the API's hot path).

`insert_run` writes a prepared run, its tag rows and its "Run triggered" event, and
takes its number, in one data-modifying CTE executed on its own (autocommit: the
statement is the transaction) instead of ~7 ORM round trips. The environment row
(the run counter) is locked from that statement to its commit only, so numbers stay
dense and unique. The statement also NOTIFYs (workers first; delivered on its
commit); after it, the live feed is told, as `runs.lifecycle.record_events` does. Inside a caller's transaction the same
statement runs there and both wait for that commit.

`CurrentTasks` caches which task definition a trigger gets (the environment's current
deployment's), per process. Task definitions never change once created; only which
deployment is current does, and the insert re-checks that in the same statement: when
another process deployed meanwhile the statement inserts nothing, the entry is
dropped and the trigger prepared again.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection

from realtime.publish import run_changed
from runs.deployments import current_deployment, find_task
from runs.lifecycle import EVENTS_CHANNEL, QUEUE_CHANNEL, publish_changes
from runs.models import (
    Deployment,
    Environment,
    IdempotentRequest,
    Run,
    RunEvent,
    RunEventKind,
    RunTag,
)
from runs.prepared import prepared_cursor
from runs.statuses import RunStatus

NOT_CHECKED = object()  # a version-locked trigger: nothing to re-check


class CurrentTasks:
    """(environment, task) → (current deployment id, its definition of the task)."""

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._entries: dict[tuple[int, str], tuple[int | None, Any]] = {}
        self._lock = threading.Lock()

    def get(self, environment: Environment, task_identifier: str):
        key = (environment.pk, task_identifier)
        entry = self._entries.get(key)
        if entry is None:
            task = find_task(environment, task_identifier)
            if task is not None:
                entry = (task.deployment_id, task)
            else:
                deployment = current_deployment(environment)
                entry = (deployment.pk if deployment else None, None)
            with self._lock:
                if len(self._entries) >= self.MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key] = entry
        return entry

    def forget(self, environment: Environment, task_identifier: str) -> None:
        with self._lock:
            self._entries.pop((environment.pk, task_identifier), None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


current_tasks = CurrentTasks()


@cache
def _run_fields() -> list:
    """Every column a trigger writes (all but the id and the number)."""
    return [
        f for f in Run._meta.concrete_fields if not f.primary_key and f.name != "number"
    ]


@dataclass(frozen=True)
class Conditions:
    """What must hold for `insert_run` to write anything, and what it writes besides.

    `deployment_id`: the environment's current deployment must still be this one
    (None: it has none). `key_digest`: the environment must still have the API key
    of this digest (`runs.environments.key_digest`): a regenerated key fails the
    insert itself, so the API needs no read of the environment first. `receipt`:
    (request key, status code, JSON body) of a request receipt (`runs.receipts`),
    stored with the run unless an answer already holds that key."""

    deployment_id: Any = NOT_CHECKED
    key_digest: bytes | None = None
    receipt: tuple[str, int, str] | None = None


@dataclass(frozen=True)
class _Shape:
    check_deployment: bool
    check_key: bool
    receipt: bool
    channels: tuple[str, ...]


@cache
def _statement(shape: _Shape) -> str:
    """The run travels as one JSON document (jsonb_populate_record): one parameter
    instead of one per column, so psycopg can reuse its parsed form of the query.
    `channels` are NOTIFYed by the statement itself (pg_notify, delivered when it
    commits), which saves the round trip of a NOTIFY after it. Its parameters are
    `_parameters`', in the same order."""
    q = connection.ops.quote_name
    env, run, tag, event, deployment, receipt = (
        q(model._meta.db_table)
        for model in (Environment, Run, RunTag, RunEvent, Deployment, IdempotentRequest)
    )
    columns = [q(f.column) for f in _run_fields()]
    where = "id = %s "
    if shape.check_deployment:
        where += (
            f"AND (SELECT d.id FROM {deployment} d WHERE d.environment_id = %s "
            f"AND d.is_current) IS NOT DISTINCT FROM CAST(%s AS bigint) "
        )
    if shape.check_key:
        where += "AND sha256(convert_to(api_key, 'UTF8')) = %s "
    if shape.receipt:  # any answer, live or expired, holds the key: see trigger()
        where += (
            f"AND NOT EXISTS (SELECT 1 FROM {receipt} a "
            f"WHERE a.environment_id = %s AND a.key = %s) "
        )
    store_receipt = (
        f", rc AS (INSERT INTO {receipt} (environment_id, key, status_code, body, "
        f"created_at) SELECT %s, %s, %s, CAST(%s AS jsonb), "
        f"CAST(%s AS timestamp with time zone) FROM r)"
        if shape.receipt
        else ""
    )
    return (
        f"WITH n AS (UPDATE {env} SET next_run_number = next_run_number + 1 "
        f"WHERE {where}RETURNING next_run_number - 1 AS number), "
        f"r AS (INSERT INTO {run} ({', '.join(columns)}, number) "
        f"SELECT {', '.join(f'j.{c}' for c in columns)}, n.number "
        f"FROM n, jsonb_populate_record(NULL::{run}, CAST(%s AS jsonb)) AS j "
        f"RETURNING id, number), "
        f"t AS (INSERT INTO {tag} (run_id, environment_id, tag, created_at) "
        f"SELECT r.id, %s, x.tag, CAST(%s AS timestamp with time zone) "
        f"FROM r, unnest(CAST(%s AS varchar[])) AS x(tag)), "
        f"e AS (INSERT INTO {event} (run_id, environment_id, kind, status, level, "
        f"message, attributes, created_at) SELECT r.id, %s, %s, %s, '', %s, "
        f"CAST('{{}}' AS jsonb), CAST(%s AS timestamp with time zone) FROM r "
        f"RETURNING id){store_receipt} "
        f"SELECT r.id, r.number, e.id"
        + "".join(f", pg_notify('{channel}', '')" for channel in shape.channels)
        + " FROM r, e"
    )


def _parameters(
    run: Run, tags: list[str], message: str, conditions: Conditions
) -> list[Any]:
    env_id = run.environment_id
    params: list[Any] = [env_id]
    if conditions.deployment_id is not NOT_CHECKED:
        params += [env_id, conditions.deployment_id]
    if conditions.key_digest is not None:
        params.append(conditions.key_digest)
    if conditions.receipt is not None:
        params += [env_id, conditions.receipt[0]]
    params += [_run_document(run), env_id, run.created_at, tags]
    params += [env_id, str(RunEventKind.STATUS), str(run.status), message]
    params.append(run.created_at)
    if conditions.receipt is not None:
        params += [env_id, *conditions.receipt, run.created_at]
    return params


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _run_document(run: Run) -> str:
    return json.dumps(
        {f.column: _json_value(getattr(run, f.attname)) for f in _run_fields()},
        separators=(",", ":"),
    )


def insert_run(
    run: Run, tags: list[str], message: str, conditions: Conditions = Conditions()
) -> Run | None:
    """Insert `run` (number assigned here) with its tags and its first status event,
    if `conditions` hold; returns None, having written nothing, otherwise. A receipt
    racing another attempt with its key raises IntegrityError (nothing written)."""
    # Outside a transaction the statement commits at once and NOTIFYs itself (workers
    # first); inside one, the caller's commit announces the run (publish_changes).
    queued = run.status == RunStatus.QUEUED
    channels: tuple[str, ...] = ()
    if not connection.in_atomic_block:
        channels = (QUEUE_CHANNEL, EVENTS_CHANNEL) if queued else (EVENTS_CHANNEL,)
    shape = _Shape(
        check_deployment=conditions.deployment_id is not NOT_CHECKED,
        check_key=conditions.key_digest is not None,
        receipt=conditions.receipt is not None,
        channels=channels,
    )
    found = _execute_prepared(
        _statement(shape), _parameters(run, tags, message, conditions)
    )
    if found is None:
        return None
    run.pk, run.number, event_id = found[:3]
    run._state.adding = False
    run._state.db = connection.alias
    _announce(run, event_id, queued)
    return run


def _execute_prepared(sql: str, params: list[Any]) -> tuple | None:
    """Run `sql` as a server-side prepared statement (runs.prepared): PostgreSQL
    parses, analyzes and plans it once per connection instead of on every trigger
    (about a third of its CPU per trigger)."""
    with prepared_cursor() as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone()


def _announce(run: Run, event_id: int, queued: bool) -> None:
    change = (run.pk, run.environment_id, RunEventKind.STATUS, event_id)
    if connection.in_atomic_block:  # the caller's commit will announce it
        publish_changes([change], queued=queued)
        return
    run_changed(
        {
            "run_id": run.pk,
            "environment_id": run.environment_id,
            "kind": RunEventKind.STATUS,
            "event_id": event_id,
        }
    )
