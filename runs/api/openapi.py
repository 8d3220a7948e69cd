"""The OpenAPI 3.1 document of the API, built from the same JSON Schemas that
validate request bodies (`schemas.py`), so it cannot drift from what is enforced."""

from __future__ import annotations

from typing import Any

from runs.api import bulk as bulk_api
from runs.api import schemas
from runs.statuses import RunStatus
from runs.triggering import MACHINES

S = schemas
PUBLIC_STATUSES = [s for s in RunStatus.values if s != RunStatus.INTERRUPTED]
LEGACY_STATUSES = [
    "PENDING_VERSION", "WAITING_FOR_DEPLOY", "QUEUED", "EXECUTING", "REATTEMPTING",
    "FROZEN", "COMPLETED", "CANCELED", "FAILED", "CRASHED", "INTERRUPTED",
    "SYSTEM_FAILURE", "DELAYED", "EXPIRED", "TIMED_OUT",
]  # fmt: skip
DATE = {"type": "string", "format": "date-time"}
BOOL = {"type": "boolean"}
STR = {"type": "string"}
NUM = {"type": "number"}

COMMON_RUN = {
    "id": {"type": "string", "examples": ["run_8yf2tq0kx4m1bw9c7hd3jz5ns"]},
    "status": {
        "type": "string",
        "enum": sorted(set(PUBLIC_STATUSES) | set(LEGACY_STATUSES)),
        "description": "The 13 public statuses with `x-trigger-api-version: 2025-07-16`, "
        "the legacy names without it.",
    },
    "taskIdentifier": STR,
    "idempotencyKey": STR,
    "version": STR,
    "isQueued": BOOL, "isExecuting": BOOL, "isWaiting": BOOL, "isCompleted": BOOL,
    "isSuccess": BOOL, "isFailed": BOOL, "isCancelled": BOOL, "isTest": BOOL,
    "createdAt": DATE, "updatedAt": DATE, "startedAt": DATE, "finishedAt": DATE,
    "delayedUntil": DATE, "expiredAt": DATE,
    "ttl": STR,
    "tags": {"type": "array", "items": STR},
    "costInCents": NUM, "baseCostInCents": NUM, "durationMs": NUM,
    "depth": {"type": "integer"},
    "metadata": {"type": "object"},
    "taskKind": STR,
}  # fmt: skip
COMMON_REQUIRED = [
    "id", "status", "taskIdentifier", "isQueued", "isExecuting", "isWaiting",
    "isCompleted", "isSuccess", "isFailed", "isCancelled", "isTest", "createdAt",
    "updatedAt", "tags", "costInCents", "baseCostInCents", "durationMs",
]  # fmt: skip
TRIGGER_FUNCTION = {
    "type": "string",
    "enum": ["trigger", "triggerAndWait", "batchTrigger", "batchTriggerAndWait"],
}
RELATED_RUN = {
    "type": "object",
    "properties": {
        **COMMON_RUN,
        "triggerFunction": TRIGGER_FUNCTION,
        "batchId": STR,
    },
    "required": [*COMMON_REQUIRED, "depth", "triggerFunction"],
}
RUN = {
    "type": "object",
    "properties": {
        **RELATED_RUN["properties"],
        "payload": {"description": "The decoded payload (absent when offloaded)"},
        "payloadPresignedUrl": STR,
        "output": {"description": "The decoded output, for COMPLETED runs"},
        "outputPresignedUrl": STR,
        "error": {
            "type": "object",
            "properties": {"message": STR, "name": STR, "stackTrace": STR},
            "required": ["message"],
        },
        "attemptCount": {"type": "integer"},
        "relatedRuns": {
            "type": "object",
            "properties": {
                "root": {"$ref": "#/components/schemas/RelatedRun"},
                "parent": {"$ref": "#/components/schemas/RelatedRun"},
                "children": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/RelatedRun"},
                },
            },
        },
    },
    "required": [*RELATED_RUN["required"], "relatedRuns", "attemptCount"],
}
LIST_ITEM = {
    "type": "object",
    "properties": {
        **COMMON_RUN,
        "env": {
            "type": "object",
            "properties": {"id": STR, "name": STR},
            "required": ["id", "name"],
        },
    },
    "required": [*COMMON_REQUIRED, "env"],
}
PAGINATION = {
    "type": "object",
    "properties": {"next": STR, "previous": STR},
    "description": "Opaque keyset cursors, present only when that page exists.",
}
BATCH = {
    "type": "object",
    "properties": {
        "id": STR,
        "status": {
            "type": "string",
            "enum": ["PENDING", "PROCESSING", "COMPLETED", "PARTIAL_FAILED", "ABORTED"],
        },
        "idempotencyKey": STR,
        "createdAt": DATE,
        "updatedAt": DATE,
        "runCount": {"type": "integer"},
        "runs": {"type": "array", "items": STR},
        "processing": {
            "type": "object",
            "properties": {
                "completedAt": DATE,
                "errors": {"type": "array", "items": {"type": "object"}},
            },
            "required": ["errors"],
        },
    },
    "required": ["id", "status", "createdAt", "updatedAt", "runCount", "runs"],
}
ERROR = {
    "type": "object",
    "properties": {
        "error": STR,
        "details": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["error"],
}


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _path_param(name: str, description: str) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": STR,
        "description": description,
    }


RUN_ID = _path_param("runId", "A run id, `run_…`")
BATCH_ID = _path_param("batchId", "A batch id, `batch_…`")
BULK_ID = _path_param("bulkActionId", "A bulk action id, `bulk_…`")
LIST_PARAMS = [
    ("page[size]", {"type": "integer", "minimum": 1, "maximum": 100}, "1–100, default 25"),
    ("page[after]", STR, "cursor from pagination.next"),
    ("page[before]", STR, "cursor from pagination.previous"),
    ("filter[status]", STR, "comma-separated statuses (public or legacy names)"),
    ("filter[taskIdentifier]", STR, "comma-separated task ids"),
    ("filter[version]", STR, "comma-separated versions"),
    ("filter[tag]", STR, "comma-separated tags (any of)"),
    ("filter[bulkAction]", STR, "runs touched by a bulk action (`bulk_…`)"),
    ("filter[schedule]", STR, "runs from a schedule (Runwatch has none: matches nothing)"),
    ("filter[isTest]", {"type": "string", "enum": ["true", "false"]}, "test runs only / none"),
    ("filter[createdAt][from]", STR, "unix ms or ISO date"),
    ("filter[createdAt][to]", STR, "unix ms or ISO date"),
    ("filter[createdAt][period]", STR, "e.g. 1h, 7d; default 7d without from/to"),
    ("filter[batch]", STR, "`batch_…`"),
    ("filter[queue]", STR, "comma-separated queue names (`task/<id>` for task queues)"),
    ("filter[machine]", {"type": "string"}, f"comma-separated: {', '.join(MACHINES)}"),
]  # fmt: skip


def _op(
    summary: str,
    responses: dict[int, tuple[str, dict | None]],
    *,
    body: dict | None = None,
    body_type: str = "application/json",
    params: list[dict] | None = None,
    description: str = "",
    secret_only: bool = True,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary}
    if description:
        op["description"] = description
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {body_type: {"schema": body}}}
    op["responses"] = {}
    for status, (text, schema) in responses.items():
        answer: dict[str, Any] = {"description": text}
        if schema is not None:
            answer["content"] = {"application/json": {"schema": schema}}
        op["responses"][str(status)] = answer
    for status, text in ERRORS.items():
        op["responses"].setdefault(
            str(status),
            {
                "description": text,
                "content": {"application/json": {"schema": _ref("Error")}},
            },
        )
    if not secret_only:
        op["description"] = (
            op.get("description", "") + " Also accepts a scoped public access token."
        ).strip()
    return op


ERRORS = {
    400: "Invalid input (with `details`)",
    401: "Invalid or Missing API key",
    404: "Not found in this environment",
    429: "Rate limited (application/problem+json)",
}

ID_ANSWER = _obj({"id": STR}, ["id"])


def paths() -> dict[str, dict[str, Any]]:
    return {
        "/api/v1/tasks/{taskIdentifier}/trigger": {
            "post": _op(
                "Trigger a task",
                {200: ("The run (isCached when an idempotency key matched)", _obj({"id": STR, "isCached": BOOL}, ["id"])), 413: ("Body over 3 MiB or metadata over 256 KiB", None), 422: ("Rejected, e.g. more than 10 tags", None)},
                body=S.TRIGGER_BODY,
                params=[_path_param("taskIdentifier", "The task id")],
                description="Answers carry `x-trigger-jwt` (a 1-hour public token for the run).",
                secret_only=False,
            )
        },
        "/api/v3/batches": {
            "post": _op(
                "Create a streamed batch (phase 1)",
                {202: ("The open batch", _obj({"id": STR, "runCount": NUM, "isCached": BOOL, "idempotencyKey": STR}, ["id", "runCount", "isCached"]))},
                body=S.CREATE_BATCH_BODY,
                description="At most 1,000 items. Then send the items to /items.",
                secret_only=False,
            )
        },
        "/api/v3/batches/{batchId}/items": {
            "post": _op(
                "Stream batch items (phase 2, NDJSON)",
                {200: ("Items accepted; sealed once every index arrived", _obj({"id": STR, "itemsAccepted": NUM, "itemsDeduplicated": NUM, "sealed": BOOL, "enqueuedCount": NUM, "expectedCount": NUM}, ["id", "itemsAccepted", "itemsDeduplicated", "sealed"])), 415: ("Not NDJSON", None), 422: ("Unknown batch", None)},
                body=S.BATCH_ITEM_LINE,
                body_type="application/x-ndjson",
                params=[BATCH_ID],
                description="One JSON object per line; items are deduplicated by `index`, so a retried stream is safe.",
                secret_only=False,
            )
        },
        "/api/v2/tasks/batch": {
            "post": _op(
                "Batch trigger (SDK ≤ 4.3.0)",
                {202: ("The batch", _obj({"id": STR, "runCount": NUM}, ["id", "runCount"]))},
                body=S.BATCH_BODY,
                description="At most 500 items; all or nothing.",
                secret_only=False,
            )
        },
        "/api/v1/tasks/batch": {
            "post": _op(
                "Batch trigger (raw HTTP)",
                {202: ("The batch and its runs", _obj({"id": STR, "isCached": BOOL, "idempotencyKey": STR, "runs": {"type": "array", "items": _obj({"id": STR, "taskIdentifier": STR, "isCached": BOOL, "idempotencyKey": STR})}}, ["id", "isCached", "runs"]))},
                body=S.BATCH_BODY,
                description="At most 500 items; the `idempotency-key` header dedupes the batch.",
            )
        },
        "/api/v2/batches/{batchId}": {
            "get": _op("Retrieve a batch", {200: ("The batch", _ref("Batch"))}, params=[BATCH_ID], secret_only=False)
        },
        "/api/v1/batches/{batchId}": {
            "get": _op("Retrieve a batch (v1)", {200: ("The batch with counts", _ref("Batch"))}, params=[BATCH_ID], secret_only=False)
        },
        "/api/v1/runs": {
            "get": _op(
                "List runs",
                {200: ("One page, newest first", _obj({"data": {"type": "array", "items": _ref("ListRunItem")}, "pagination": PAGINATION}, ["data", "pagination"]))},
                params=[{"name": n, "in": "query", "schema": s, "description": d} for n, s, d in LIST_PARAMS],
                secret_only=False,
            )
        },
        "/api/v3/runs/{runId}": {
            "get": _op("Retrieve a run", {200: ("The run", _ref("Run"))}, params=[RUN_ID], secret_only=False)
        },
        "/api/v2/runs/{runId}/cancel": {
            "post": _op("Cancel a run", {200: ("Canceled (a no-op on finished runs); children too", ID_ANSWER)}, params=[RUN_ID], secret_only=False)
        },
        "/api/v1/runs/{runId}/replay": {
            "post": _op(
                "Replay a run",
                {200: ("The new run", ID_ANSWER)},
                body=S.REPLAY_BODY,
                params=[RUN_ID],
                description="No body: same payload and options. A body overrides them.",
            )
        },
        "/api/v1/runs/{runId}/reschedule": {
            "post": _op("Reschedule a delayed run", {200: ("The run", _ref("Run"))}, body=S.RESCHEDULE_BODY, params=[RUN_ID])
        },
        "/api/v1/runs/{runId}/metadata": {
            "get": _op("Get a run's metadata", {200: ("The metadata", _obj({"metadata": {"type": "object"}, "metadataType": STR}, ["metadata"]))}, params=[RUN_ID], secret_only=False),
            "put": _op(
                "Update a run's metadata",
                {200: ("The new metadata", _obj({"metadata": {"type": "object"}}, ["metadata"])), 413: ("Over 256 KiB", None), 422: ("The run finished more than an hour ago", None)},
                body=S.METADATA_BODY,
                params=[RUN_ID],
                description="`metadata` replaces the object; `operations` (set, delete, append, remove, increment, update) apply in order.",
                secret_only=False,
            ),
        },
        "/api/v1/runs/{runId}/tags": {
            "post": _op("Add tags", {200: ("What was set", _obj({"message": STR}, ["message"])), 422: ("More than 10 tags", None)}, body=S.TAGS_BODY, params=[RUN_ID], secret_only=False)
        },
        "/api/v2/packets/{path}": {
            "put": _op("Get a signed upload URL for a large payload", {200: ("PUT the bytes to presignedUrl, then trigger with payloadType application/store and payload storagePath", _obj({"presignedUrl": STR, "storagePath": STR}, ["presignedUrl", "storagePath"]))}, params=[_path_param("path", "Packet path")])
        },
        "/api/v1/packets/{path}": {
            "get": _op("Get a signed download URL", {200: ("GET presignedUrl", _obj({"presignedUrl": STR}, ["presignedUrl"]))}, params=[_path_param("path", "Packet path")])
        },
        "/api/v1/bulk-actions": {
            "post": _op(
                "Create a bulk action (cancel or replay)",
                {202: ("Accepted; processed in the background", ID_ANSWER), 422: ("No run matches, or more than 1,000,000 runs", None)},
                body=bulk_api.CREATE_BODY,
                description="Exactly one of `filter` (the runs.list() filters, frozen at submit: a period becomes an absolute from/to) or `runIds` (at most 500). Cancel skips runs that have finished; replay replays every run on the current version.",
            ),
            "get": _op(
                "List bulk actions",
                {200: ("One page, newest first", _obj({"data": {"type": "array", "items": _ref("BulkAction")}, "pagination": PAGINATION}, ["data", "pagination"]))},
                params=[{"name": n, "in": "query", "schema": s, "description": d} for n, s, d in LIST_PARAMS[:3]],
            ),
        },
        "/api/v1/bulk-actions/{bulkActionId}": {
            "get": _op("Retrieve a bulk action", {200: ("Status PENDING while it runs; skipped runs count as failure", _ref("BulkAction"))}, params=[BULK_ID])
        },
        "/api/v1/bulk-actions/{bulkActionId}/abort": {
            "post": _op("Abort a bulk action", {200: ("Aborted", ID_ANSWER), 409: ("It had already completed or been aborted", None)}, params=[BULK_ID])
        },
        "/api/v1/idempotencyKeys/{key}/reset": {
            "post": _op("Reset an idempotency key", {200: ("Released", ID_ANSWER)}, body=S.RESET_IDEMPOTENCY_BODY, params=[_path_param("key", "The idempotency key")])
        },
    }  # fmt: skip


def document(server_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Runwatch API",
            "version": "2025-07-16",
            "description": "Compatible with Trigger.dev's management API: the official "
            "@trigger.dev/sdk, curl and scripts work against it. Authenticate with "
            "`Authorization: Bearer <environment secret key>`; the key selects the "
            "environment. Optional fields are omitted, never null. Errors are "
            '`{"error": "<message>"}`. See docs/api.md.',
        },
        "servers": [{"url": server_url}],
        "security": [{"bearerAuth": []}],
        "paths": paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An environment secret key (tr_dev_…) or a public access token (JWT)",
                }
            },
            "schemas": {
                "Run": RUN,
                "RelatedRun": RELATED_RUN,
                "ListRunItem": LIST_ITEM,
                "Batch": BATCH,
                "BulkAction": bulk_api.BULK_ACTION_OBJECT,
                "Error": ERROR,
            },
        },
    }


def operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat list for the docs page: path, method, operation."""
    found = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            found.append({"path": path, "method": method.upper(), "op": op})
    return found
