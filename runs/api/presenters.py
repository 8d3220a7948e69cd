"""Runs and batches as the API shows them (Trigger.dev's run objects, reference §2.5).

Optional fields are omitted, never `null`: the SDK's zod schemas reject `null` for
them. Status names depend on the request (`StatusNames`): the SDK sends
`x-trigger-api-version: 2025-07-16` and gets the 13 public statuses; without the
header the legacy names are used (reference §1.3).

List pages use `LIST_COLUMNS` (one query per page); a retrieved run needs two
queries (the run with its root, parent and batch; then its direct children).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest

from runs import packets
from runs.models import Batch, Run
from runs.statuses import boolean_helpers, public_status

API_VERSION_HEADER = "HTTP_X_TRIGGER_API_VERSION"
CURRENT_API_VERSION = "2025-07-16"
HIDDEN_METADATA_KEYS = ("$$streams", "$$streamsVersion", "$$streamsBaseUrl")

# What a run object needs, for `.only()` on list pages and related runs.
RUN_COLUMNS = (
    "id",
    "friendly_id",
    "environment_id",
    "task_identifier",
    "status",
    "idempotency_key",
    "idempotency_key_user",
    "version",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "delay_until",
    "expired_at",
    "ttl",
    "is_test",
    "tags",
    "duration_ms",
    "metadata",
    "depth",
    "batch_id",
    "resume_parent_on_completion",
)
LIST_COLUMNS = (*RUN_COLUMNS, "environment__slug")


def uses_legacy_statuses(request: HttpRequest) -> bool:
    """True unless the client sent an API version of 2025-07-16 or later."""
    version = request.META.get(API_VERSION_HEADER, "").strip()
    return not version or version < CURRENT_API_VERSION


def iso(value: datetime) -> str:
    """`2024-06-25T15:45:26.123Z`, as Trigger.dev writes dates."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _put(body: dict[str, Any], key: str, value: Any) -> None:
    """Set `key` only when there is a value (omitted, never null)."""
    if value is None or value == "":
        return
    body[key] = iso(value) if isinstance(value, datetime) else value


def visible_metadata(metadata: Any) -> dict | None:
    if not isinstance(metadata, dict) or not metadata:
        return None
    return {k: v for k, v in metadata.items() if k not in HIDDEN_METADATA_KEYS}


def trigger_function(run: Run) -> str:
    if run.batch_id:
        return (
            "batchTriggerAndWait" if run.resume_parent_on_completion else "batchTrigger"
        )
    return "triggerAndWait" if run.resume_parent_on_completion else "trigger"


def common_fields(run: Run, *, legacy: bool) -> dict[str, Any]:
    """The fields every run object shares (list items, retrieve, related runs)."""
    body: dict[str, Any] = {
        "id": run.friendly_id,
        "status": public_status(run.status, legacy=legacy),
        "taskIdentifier": run.task_identifier,
    }
    _put(body, "idempotencyKey", run.idempotency_key_user or run.idempotency_key)
    _put(body, "version", run.version)
    body.update(boolean_helpers(run.status))
    body["isTest"] = run.is_test
    body["createdAt"] = iso(run.created_at)
    body["updatedAt"] = iso(run.updated_at)
    _put(body, "startedAt", run.started_at)
    _put(body, "finishedAt", run.finished_at)
    _put(body, "delayedUntil", run.delay_until)
    _put(body, "ttl", run.ttl)
    _put(body, "expiredAt", run.expired_at)
    body["tags"] = sorted(run.tags or [])
    body["costInCents"] = 0
    body["baseCostInCents"] = 0
    body["durationMs"] = run.duration_ms or 0
    body["depth"] = run.depth
    _put(body, "metadata", visible_metadata(run.metadata))
    body["taskKind"] = "STANDARD"
    return body


def list_item(run: Run, *, legacy: bool) -> dict[str, Any]:
    body = common_fields(run, legacy=legacy)
    body["env"] = {"id": str(run.environment_id), "name": run.environment.slug}
    return body


def related_run(run: Run, *, legacy: bool) -> dict[str, Any]:
    body = common_fields(run, legacy=legacy)
    body["triggerFunction"] = trigger_function(run)
    if run.batch_id:
        body["batchId"] = run.batch.friendly_id
    return body


def error_object(error: Any) -> dict[str, str] | None:
    """A stored {name, message, stack} as the SDK's SerializedError."""
    if not isinstance(error, dict) or not (error.get("message") or error.get("name")):
        return None
    body = {"message": str(error.get("message") or error.get("name"))}
    _put(body, "name", error.get("name"))
    _put(body, "stackTrace", error.get("stack") or error.get("stackTrace"))
    return body


def run_object(
    run: Run,
    *,
    legacy: bool,
    children: list[Run],
    packet_url: Any = None,
) -> dict[str, Any]:
    """The retrieve object (also reschedule's answer). `run` must have `batch`,
    `parent`, `root` loaded; `packet_url(run, field)` signs download URLs for
    offloaded payloads and outputs."""
    body = related_run(run, legacy=legacy)
    if run.payload_type == packets.STORE:
        if packet_url is not None:
            body["payloadPresignedUrl"] = packet_url(run.payload)
    else:
        _put(body, "payload", packets.decode_packet(run.payload, run.payload_type))
    if run.status == "COMPLETED":
        if run.output_type == packets.STORE:
            if packet_url is not None and run.output:
                body["outputPresignedUrl"] = packet_url(run.output)
        else:
            _put(body, "output", packets.decode_packet(run.output, run.output_type))
    _put(body, "error", error_object(run.error))
    body["attemptCount"] = run.attempt_count
    related: dict[str, Any] = {}
    if run.root_id and run.root is not None:
        related["root"] = related_run(run.root, legacy=legacy)
    if run.parent_id and run.parent is not None:
        related["parent"] = related_run(run.parent, legacy=legacy)
    related["children"] = [related_run(child, legacy=legacy) for child in children]
    body["relatedRuns"] = related
    return body


def batch_object(batch: Batch, run_ids: list[str], *, version: int) -> dict[str, Any]:
    """`GET /api/v2/batches/{id}` (version 2) or `/api/v1/batches/{id}` (version 1)."""
    body: dict[str, Any] = {"id": batch.friendly_id, "status": batch.status}
    _put(body, "idempotencyKey", batch.idempotency_key)
    body["createdAt"] = iso(batch.created_at)
    body["updatedAt"] = iso(batch.updated_at)
    body["runCount"] = batch.run_count
    body["runs"] = run_ids
    errors = [_batch_error(e) for e in batch.processing_errors or []]
    if version == 2:
        processing: dict[str, Any] = {"errors": errors}
        _put(processing, "completedAt", batch.processing_completed_at)
        body["processing"] = processing
        _put(body, "processingCompletedAt", batch.processing_completed_at)
    else:
        body["successfulRunCount"] = len(run_ids)
        body["failedRunCount"] = len(errors)
        if errors:
            body["errors"] = errors
    return body


def _batch_error(error: dict) -> dict[str, Any]:
    body = {
        "index": int(error.get("index", 0)),
        "taskIdentifier": str(error.get("taskIdentifier", "")),
        "error": str(error.get("error", "")),
    }
    _put(body, "errorCode", error.get("errorCode"))
    return body


def page_body(items: list[dict[str, Any]], page: Any, params: Any) -> dict[str, Any]:
    """`{data, pagination: {next?, previous?}}` from a `runs.pagination.Page` fetched
    with `params` (a `queries.PageParams`, which turns its cursors into API cursors)."""
    pagination: dict[str, str] = {}
    _put(pagination, "next", params.wrap(page.next_cursor))
    _put(pagination, "previous", params.wrap(page.previous_cursor))
    return {"data": items, "pagination": pagination}
