"""The worker's two hot statements on PostgreSQL, one round trip each.

`start` is claims._start and `complete` is outcomes.complete written as single
statements with data-modifying CTEs and run as prepared statements: the ORM versions
build ~5 statements each in Python, which made the worker (not PostgreSQL) the
bottleneck of a busy queue. Effects are identical (same guards, same rows, same
events, published the same way); SQLite and every rarer outcome use the ORM versions,
and the test suite runs both.

Races resolve as in the ORM versions: the claim locks with FOR UPDATE SKIP LOCKED;
the completion's UPDATE locks each run and re-checks its WHERE clause after any
concurrent writer (a cancel) commits, so a canceled run stays canceled.
"""

from __future__ import annotations

import json
from datetime import datetime

from runs.lifecycle import check_allowed, publish_changes
from runs.prepared import prepared_cursor
from runs.statuses import RunStatus

# Claim and start: pick (by a filter or by ids), start, open attempts, record events.
_START = """
WITH picked AS ({picked}),
started AS (
    UPDATE runs_run r SET
        status = 'EXECUTING',
        attempt_count = r.attempt_count + 1,
        started_at = COALESCE(r.started_at, %(now)s),
        worker_id = %(worker)s,
        heartbeat_at = %(now)s,
        retry_at = NULL,
        ttl_expires_at = NULL,
        updated_at = %(now)s,
        deployment_id = CASE WHEN r.lock_to_version = '' THEN COALESCE(
            (SELECT d.dep FROM unnest(%(denv)s::bigint[], %(dep)s::bigint[])
                AS d(env, dep) WHERE d.env = r.environment_id),
            r.deployment_id) ELSE r.deployment_id END,
        version = CASE WHEN r.lock_to_version = '' THEN COALESCE(
            (SELECT d.ver FROM unnest(%(denv)s::bigint[], %(dver)s::text[])
                AS d(env, ver) WHERE d.env = r.environment_id),
            r.version) ELSE r.version END
    FROM picked WHERE r.id = picked.id
    RETURNING r.id, r.friendly_id, r.environment_id, r.task_identifier, r.payload,
        r.payload_type, r.metadata, r.tags, r.is_test, r.created_at, r.attempt_count,
        r.max_attempts, r.max_duration, r.queue, r.machine, r.version, r.duration_ms,
        r.batch_id, r.priority_ms, r.queue_timestamp
),
attempts AS (
    INSERT INTO runs_attempt (run_id, number, status, worker_id, started_at)
    SELECT id, attempt_count, 'EXECUTING', %(worker)s, %(now)s FROM started
    RETURNING id, run_id
),
events AS (
    INSERT INTO runs_runevent
        (run_id, environment_id, kind, status, level, message, attributes, created_at)
    SELECT s.id, s.environment_id, 'status', e.status, '',
        replace(e.message, '{{attempt}}', s.attempt_count::text), '{{}}', %(now)s
    FROM started s CROSS JOIN (VALUES
        (1, 'DEQUEUED', 'Attempt {{attempt}} dequeued by ' || %(worker)s),
        (2, 'EXECUTING', 'Attempt {{attempt}} started')) AS e(ord, status, message)
    ORDER BY s.id, e.ord
    RETURNING id, run_id
)
SELECT s.*, a.id,
    (SELECT array_agg(e.id ORDER BY e.id) FROM events e WHERE e.run_id = s.id)
FROM started s JOIN attempts a ON a.run_id = s.id
ORDER BY s.queue_timestamp, s.id
"""

# The head of a queue in claim order: `{where}` narrows it to an environment (index
# `run_claimable`) or to one queue of it (`run_claimable_queue`).
_HEAD = """
        SELECT r.id, r.queue_timestamp FROM runs_run r
        WHERE {where} AND r.status = 'QUEUED'
          AND r.task_identifier = ANY(%(tasks)s::text[])
          AND (r.ttl_expires_at IS NULL OR r.ttl_expires_at > %(now)s)
          AND (r.lock_to_version = '' OR (r.environment_id, r.lock_to_version) IN (
              SELECT * FROM unnest(%(venv)s::bigint[], %(vver)s::text[])))
        ORDER BY r.queue_timestamp, r.id
        LIMIT %(limit)s
        FOR UPDATE OF r SKIP LOCKED
"""

_RESTRICTED = """
    SELECT 1 FROM runs_queue q
    WHERE q.environment_id = e.env AND {name} (q.paused OR q.concurrency_limit IS NOT NULL)
"""

# The oldest claimable runs over the worker's environments, read in index order so
# that no plan ever sorts a whole queue (a planner that believes the queue is empty
# must not sort 100,000 runs on every claim). An environment without a paused or
# limited queue: the head of its queue (`run_claimable`). One with such a queue:
# the head of each of its other queues that has queued runs (their names found by
# skipping through `run_claimable_queue`, one probe per queue), so the runs of a
# paused queue are never walked: with 100,000 of them at the front, every claim
# used to step over all of them.
_PICK_QUEUED = f"""
    SELECT c.id FROM (
        SELECT h.id, h.queue_timestamp FROM unnest(%(envs)s::bigint[]) AS e(env)
        CROSS JOIN LATERAL ({_HEAD.format(where="r.environment_id = e.env")}) AS h
        WHERE NOT EXISTS ({_RESTRICTED.format(name="")})
        UNION ALL
        SELECT h.id, h.queue_timestamp FROM unnest(%(envs)s::bigint[]) AS e(env)
        CROSS JOIN LATERAL (
            WITH RECURSIVE queued(name) AS (
                (SELECT r.queue FROM runs_run r
                 WHERE r.environment_id = e.env AND r.status = 'QUEUED'
                 ORDER BY r.queue LIMIT 1)
                UNION ALL
                SELECT (SELECT r.queue FROM runs_run r
                        WHERE r.environment_id = e.env AND r.status = 'QUEUED'
                          AND r.queue > queued.name
                        ORDER BY r.queue LIMIT 1)
                FROM queued WHERE queued.name IS NOT NULL
            )
            SELECT name FROM queued WHERE name IS NOT NULL
              AND NOT EXISTS ({_RESTRICTED.format(name="q.name = queued.name AND")})
        ) AS open_queue
        CROSS JOIN LATERAL ({
    _HEAD.format(where="r.environment_id = e.env AND r.queue = open_queue.name")
}) AS h
        WHERE EXISTS ({_RESTRICTED.format(name="")})
    ) AS c
    ORDER BY c.queue_timestamp, c.id
    LIMIT %(limit)s
"""

_PICK_IDS = "SELECT unnest(%(ids)s::bigint[]) AS id"

START_QUEUED = _START.format(picked=_PICK_QUEUED)
START_IDS = _START.format(picked=_PICK_IDS)

COMPLETE = """
WITH results AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(attempts)s::int[],
        %(attempt_ids)s::bigint[], %(outputs)s::text[], %(durations)s::bigint[])
        AS v(id, attempt, attempt_id, output, duration_ms)
),
done AS (
    UPDATE runs_run r SET
        status = 'COMPLETED', output = v.output, output_type = 'application/json',
        duration_ms = v.duration_ms, finished_at = %(now)s, updated_at = %(now)s,
        worker_id = ''
    FROM results v
    WHERE r.id = v.id AND r.status = 'EXECUTING' AND r.worker_id = %(worker)s
      AND r.attempt_count = v.attempt
    RETURNING r.id, r.environment_id
),
closed AS (
    UPDATE runs_attempt a SET completed_at = %(now)s,
        status = CASE WHEN done.id IS NULL THEN 'CANCELED' ELSE 'COMPLETED' END
    FROM results v LEFT JOIN done ON done.id = v.id
    WHERE a.id = v.attempt_id AND a.completed_at IS NULL
),
events AS (
    INSERT INTO runs_runevent
        (run_id, environment_id, kind, status, level, message, attributes, created_at)
    SELECT id, environment_id, 'status', 'COMPLETED', '', '', '{}', %(now)s FROM done
    ORDER BY id
    RETURNING id, run_id, environment_id
)
SELECT id, run_id, environment_id FROM events
"""


def _execute(sql: str, params: dict) -> list[tuple]:
    """Run one statement as a server-side prepared statement on Django's connection
    (inside the caller's transaction; runs.prepared)."""
    with prepared_cursor() as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def start(
    worker_id: str,
    deployments: dict[int, tuple[int, str]],
    now: datetime,
    *,
    ids: list[int] | None = None,
    limit: int = 0,
    environment_ids: list[int] | None = None,
    task_ids: list[str] | None = None,
    compatible_versions: dict[int, list[str]] | None = None,
) -> list[dict]:
    """Start the given queued runs (`ids`, already locked by the caller), or claim and
    start up to `limit` claimable runs of queues without a limit. Returns one dict per
    run with the ClaimedRun fields, in claim order."""
    check_allowed(RunStatus.DEQUEUED, [RunStatus.QUEUED])
    check_allowed(RunStatus.EXECUTING, [RunStatus.DEQUEUED])
    pairs = [(env, v) for env, vs in (compatible_versions or {}).items() for v in vs]
    params = {
        "now": now,
        "worker": worker_id,
        "denv": list(deployments),
        "dep": [dep for dep, _ in deployments.values()],
        "dver": [version for _, version in deployments.values()],
    }
    if ids is not None:
        rows = _execute(START_IDS, {**params, "ids": ids})
    else:
        params |= {
            "envs": environment_ids or [],
            "tasks": task_ids or [],
            "limit": limit,
            "venv": [env for env, _ in pairs],
            "vver": [v for _, v in pairs],
        }
        rows = _execute(START_QUEUED, params)
    claimed = []
    changes = []
    for row in rows:
        (pk, friendly_id, env_id, task, payload, payload_type, metadata, tags) = row[:8]
        is_test, created_at, attempt, max_attempts, max_duration, queue = row[8:14]
        machine, version, duration_ms, batch_id, priority_ms = row[14:19]
        attempt_id, event_ids = row[20], row[21] or []
        claimed.append(
            {
                "pk": pk,
                "friendly_id": friendly_id,
                "environment_id": env_id,
                "task": task,
                "payload": payload,
                "payload_type": payload_type,
                "metadata": _json(metadata),
                "tags": _json(tags),
                "is_test": is_test,
                "created_at": created_at,
                "attempt": attempt,
                "max_attempts": max_attempts,
                "max_duration": max_duration,
                "queue": queue,
                "machine": machine,
                "version": version,
                "duration_ms": duration_ms,
                "batch_id": batch_id,
                "priority_ms": priority_ms,
                "attempt_id": attempt_id,
            }
        )
        changes += [(pk, env_id, "status", event_id) for event_id in event_ids]
    publish_changes(changes)
    return claimed


def complete(results: list, worker_id: str, now: datetime) -> list[int]:
    """outcomes.complete for one worker's results. Returns the ids that completed."""
    check_allowed(RunStatus.COMPLETED, [RunStatus.EXECUTING])
    rows = _execute(
        COMPLETE,
        {
            "now": now,
            "worker": worker_id,
            "ids": [r.run_id for r in results],
            "attempts": [r.attempt for r in results],
            "attempt_ids": [r.attempt_id for r in results],
            "outputs": [r.output for r in results],
            "durations": [r.duration_ms for r in results],
        },
    )
    publish_changes([(run_id, env_id, "status", pk) for pk, run_id, env_id in rows])
    return [run_id for _, run_id, _ in rows]
