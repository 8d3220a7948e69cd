"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of the request bodies.

`validation.validate` checks bodies against them and `openapi.py` publishes them,
so the document and the 400 answers cannot drift apart. Field semantics follow
Trigger.dev (reference §1.4–§1.12, §8).
"""

from __future__ import annotations

from runs.triggering import MACHINES, MAX_TAG_LENGTH

STRING = {"type": "string"}
BOOLEAN = {"type": "boolean"}
NUMBER = {"type": "number"}
INTEGER = {"type": "integer"}
ANY = {}
OBJECT = {"type": "object"}

TAG = {"type": "string", "maxLength": MAX_TAG_LENGTH}
TAGS = {
    "anyOf": [TAG, {"type": "array", "items": TAG}],
    "description": "One tag or a list; at most 10 per run, each ≤ 128 characters.",
}
MACHINE = {"type": "string", "enum": list(MACHINES)}
IDEMPOTENCY_KEY = {"type": "string", "maxLength": 2048}
IDEMPOTENCY_KEY_OPTIONS = {
    "type": "object",
    "properties": {
        "key": STRING,
        "scope": {"type": "string", "enum": ["run", "attempt", "global"]},
    },
    "required": ["key", "scope"],
}
DURATION_OR_DATE = {
    "type": "string",
    "description": 'A duration ("30s", "1h30m", "2w") or an ISO-8601 date.',
}
TTL = {
    "anyOf": [DURATION_OR_DATE, {"type": "integer", "minimum": 0}],
    "description": 'A duration ("10m") or seconds; 0 = none.',
}
CONCURRENCY_KEY = {"type": ["string", "number"]}
QUEUE = {
    "type": "object",
    "properties": {"name": STRING, "concurrencyLimit": INTEGER},
    "required": ["name"],
}

# Options shared by a single trigger and a batch item.
ITEM_OPTIONS_PROPERTIES = {
    "queue": QUEUE,
    "concurrencyKey": CONCURRENCY_KEY,
    "delay": DURATION_OR_DATE,
    "ttl": TTL,
    "idempotencyKey": IDEMPOTENCY_KEY,
    "idempotencyKeyTTL": {
        "type": "string",
        "description": "^\\d+[smhd]$, default 30 days",
    },
    "idempotencyKeyOptions": IDEMPOTENCY_KEY_OPTIONS,
    "machine": MACHINE,
    "maxAttempts": {"type": "integer", "minimum": 1},
    "maxDuration": {"type": "number", "description": "seconds, clamped to ≥ 5"},
    "metadata": {"type": "object", "description": "≤ 256 KiB serialized"},
    "metadataType": STRING,
    "payloadType": {
        "type": "string",
        "description": "application/json (default), application/super+json, text/plain "
        "or application/store (payload = a packet's storage path)",
    },
    "payloadSize": {"type": "integer", "minimum": 0},
    "tags": TAGS,
    "test": BOOLEAN,
    "priority": {"type": "number", "description": "seconds earlier in the queue"},
    "lockToVersion": STRING,
    "externalDeploymentId": STRING,
    "region": STRING,
    "parentAttempt": STRING,
}

TRIGGER_OPTIONS = {
    "type": "object",
    "properties": {
        **ITEM_OPTIONS_PROPERTIES,
        "parentRunId": STRING,
        "resumeParentOnCompletion": BOOLEAN,
        "parentBatch": STRING,
        "dependentAttempt": STRING,
        "dependentBatch": STRING,
        "bulkActionId": STRING,
    },
}
TRIGGER_BODY = {
    "type": "object",
    "properties": {
        "payload": {
            "description": "A JSON value, or a string for payloadType "
            "application/super+json, text/plain and application/store"
        },
        "context": ANY,
        "options": TRIGGER_OPTIONS,
    },
}
BATCH_ITEM = {
    "type": "object",
    "properties": {
        "task": {"type": "string", "minLength": 1},
        "payload": ANY,
        "context": ANY,
        "options": {"type": "object", "properties": ITEM_OPTIONS_PROPERTIES},
    },
    "required": ["task"],
}
BATCH_BODY = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": BATCH_ITEM},
        "parentRunId": STRING,
        "resumeParentOnCompletion": BOOLEAN,
        "dependentAttempt": STRING,
    },
    "required": ["items"],
}
CREATE_BATCH_BODY = {
    "type": "object",
    "properties": {
        "runCount": {"type": "integer", "minimum": 1},
        "taskIdentifiers": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "minItems": 1,
        },
        "parentRunId": STRING,
        "resumeParentOnCompletion": BOOLEAN,
        "idempotencyKey": IDEMPOTENCY_KEY,
        "idempotencyKeyOptions": IDEMPOTENCY_KEY_OPTIONS,
    },
    "required": ["runCount"],
}
BATCH_ITEM_LINE = {
    "type": "object",
    "properties": {
        "index": {"type": "integer", "minimum": 0},
        "task": {"type": "string", "minLength": 1},
        "payload": ANY,
        "options": {"type": "object", "properties": ITEM_OPTIONS_PROPERTIES},
    },
    "required": ["index", "task"],
}
REPLAY_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "payload": ANY,
        "payloadType": {
            "type": "string",
            "enum": ["application/json", "application/super+json"],
        },
        "metadata": OBJECT,
        "tags": TAGS,
        "queue": STRING,
        "concurrencyKey": CONCURRENCY_KEY,
        "machine": MACHINE,
        "version": STRING,
        "region": STRING,
        "delay": DURATION_OR_DATE,
        "ttl": TTL,
        "idempotencyKey": IDEMPOTENCY_KEY,
        "idempotencyKeyTTL": STRING,
        "maxAttempts": {"type": "integer", "minimum": 1},
        "maxDuration": {"type": "number", "minimum": 0},
        "priority": NUMBER,
    },
}
RESCHEDULE_BODY = {
    "type": "object",
    "properties": {"delay": DURATION_OR_DATE},
    "required": ["delay"],
}
METADATA_OPERATION = {
    "type": "object",
    "properties": {
        "type": {
            "type": "string",
            "enum": ["set", "delete", "append", "remove", "increment", "update"],
        },
        "key": STRING,
        "value": ANY,
    },
    "required": ["type"],
}
OPERATIONS = {"type": "array", "items": METADATA_OPERATION}
METADATA_BODY = {
    "type": "object",
    "properties": {
        "metadata": OBJECT,
        "operations": OPERATIONS,
        "parentOperations": OPERATIONS,
        "rootOperations": OPERATIONS,
    },
}
TAGS_BODY = {"type": "object", "properties": {"tags": TAGS}, "required": ["tags"]}
RESET_IDEMPOTENCY_BODY = {
    "type": "object",
    "properties": {"taskIdentifier": {"type": "string", "minLength": 1}},
    "required": ["taskIdentifier"],
}
