"""Bulk actions over HTTP, shaped like Trigger.dev's (reference §1.15, §5.3, §8):

- `POST /api/v1/bulk-actions` `{action, filter | runIds, name?}` → 202 `{id}`
- `GET /api/v1/bulk-actions` → a cursor page of bulk action objects, newest first
- `GET /api/v1/bulk-actions/{id}` → the bulk action object
- `POST /api/v1/bulk-actions/{id}/abort` → `{id}` (409 once it has ended)

The object is the SDK's `BulkActionObject`: status is only PENDING / COMPLETED /
ABORTED (RUNNING reports as PENDING, so `runs.bulk.poll()` keeps polling) and
counts are total / success / failure, skipped runs counting as failures.
The work itself is `runs.bulk`'s, shared with the dashboard.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from runs import bulk
from runs.api import schemas
from runs.api.bodies import read_json_object
from runs.api.endpoint import ApiRequest, api_endpoint
from runs.api.errors import ApiError, bad_request
from runs.api.presenters import iso, page_body
from runs.api.queries import page_params
from runs.api.validation import validate
from runs.models import BulkAction, BulkActionStatus
from runs.pagination import paginate

STRINGS = {"anyOf": [schemas.STRING, {"type": "array", "items": schemas.STRING}]}
QUEUE_NAME = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": ["task", "custom"]},
        "name": schemas.STRING,
    },
    "required": ["type", "name"],
}
QUEUE = {"anyOf": [schemas.STRING, QUEUE_NAME]}
MOMENT = {
    "type": ["string", "number"],
    "description": "Unix milliseconds or an ISO-8601 date",
}
BULK_FILTER = {
    "type": "object",
    "additionalProperties": False,
    "description": "The runs.list() filters; at least one must have a value.",
    "properties": {
        "status": STRINGS,
        "taskIdentifier": STRINGS,
        "version": STRINGS,
        "tag": STRINGS,
        "from": MOMENT,
        "to": MOMENT,
        "period": schemas.STRING,
        "bulkAction": schemas.STRING,
        "schedule": schemas.STRING,
        "isTest": schemas.BOOLEAN,
        "batch": schemas.STRING,
        "queue": {"anyOf": [QUEUE, {"type": "array", "items": QUEUE}]},
        "machine": {
            "anyOf": [schemas.MACHINE, {"type": "array", "items": schemas.MACHINE}]
        },
        "region": STRINGS,
    },
}
CREATE_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "action": {"type": "string", "enum": ["cancel", "replay"]},
        "filter": BULK_FILTER,
        "runIds": {
            "type": "array",
            "items": schemas.STRING,
            "minItems": 1,
            "maxItems": bulk.MAX_RUN_IDS,
        },
        "name": {"type": "string", "maxLength": bulk.MAX_NAME_LENGTH},
        "targetRegion": schemas.STRING,
    },
    "required": ["action"],
}
BULK_ACTION_OBJECT = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "examples": ["bulk_3x7u6hw71gkfp2vfx302czpox"]},
        "name": schemas.STRING,
        "type": {"type": "string", "enum": ["CANCEL", "REPLAY"]},
        "status": {"type": "string", "enum": ["PENDING", "COMPLETED", "ABORTED"]},
        "counts": {
            "type": "object",
            "properties": {
                "total": schemas.INTEGER,
                "success": schemas.INTEGER,
                "failure": schemas.INTEGER,
            },
            "required": ["total", "success", "failure"],
        },
        "createdAt": {"type": "string", "format": "date-time"},
        "completedAt": {"type": "string", "format": "date-time"},
    },
    "required": ["id", "type", "status", "counts", "createdAt"],
}

# filter key → RunFilter field (the others map through `_filter_value`)
FILTER_FIELDS = {
    "status": "status",
    "taskIdentifier": "task",
    "version": "version",
    "tag": "tag",
    "from": "from",
    "to": "to",
    "period": "period",
    "bulkAction": "bulk_action",
    "schedule": "schedule",
    "isTest": "is_test",
    "batch": "batch",
    "queue": "queue",
    "machine": "machine",
}


def bulk_action_object(action: BulkAction) -> dict[str, Any]:
    """The SDK's BulkActionObject (optional fields omitted, never null)."""
    body: dict[str, Any] = {"id": action.friendly_id}
    if action.name:
        body["name"] = action.name
    body["type"] = action.type
    body["status"] = BulkActionStatus.PENDING if action.is_active else action.status
    body["counts"] = {
        "total": action.targeted,
        "success": action.succeeded,
        "failure": action.skipped + action.failed,
    }
    body["createdAt"] = iso(action.created_at)
    if action.completed_at:
        body["completedAt"] = iso(action.completed_at)
    return body


def filter_data(api_filter: dict[str, Any]) -> dict[str, Any]:
    """The API's filter object as RunFilter data (400 for what Runwatch cannot match)."""
    if "region" in api_filter:
        raise bad_request(
            "filter.region is not supported by Runwatch (runs have no region)"
        )
    if not any(_has_value(v) for v in api_filter.values()):
        raise bad_request("At least one filter must be provided")
    data: dict[str, Any] = {}
    for key, value in api_filter.items():
        if not _has_value(value):
            continue
        values = value if isinstance(value, list) else [value]
        if key == "isTest":
            data["is_test"] = "true" if value else "false"
        elif key == "queue":
            data["queue"] = [_queue_name(q) for q in values]
        elif key in ("from", "to"):
            data[key] = str(int(value)) if isinstance(value, int | float) else value
        else:
            data[FILTER_FIELDS[key]] = (
                [str(v) for v in values] if isinstance(value, list) else value
            )
    return data


def _has_value(value: Any) -> bool:
    if isinstance(value, list):
        return any(_has_value(v) for v in value)
    if isinstance(value, str):
        return bool(value.strip())
    return value is not None


def _queue_name(queue: str | dict) -> str:
    if isinstance(queue, dict):
        return f"task/{queue['name']}" if queue["type"] == "task" else queue["name"]
    return queue


def _bulk_action(request: ApiRequest, bulk_id: str) -> BulkAction:
    """The bulk action in the caller's environment, or 404 (another one's too)."""
    found = BulkAction.objects.filter(
        environment=request.api.environment, friendly_id=bulk_id
    ).first()
    if found is None:
        raise ApiError(404, "Bulk action not found")
    return found


@csrf_exempt
def bulk_actions(request: HttpRequest) -> HttpResponse:
    """One URL, two endpoints: only creating is request-idempotent."""
    if request.method == "POST":
        return create_bulk_action(request)
    return list_bulk_actions(request)


@api_endpoint("GET")
def list_bulk_actions(request: ApiRequest) -> HttpResponse:
    params = page_params(request)
    page = paginate(
        BulkAction.objects.filter(environment=request.api.environment),
        size=params.size,
        after=params.after,
        before=params.before,
    )
    items = [bulk_action_object(action) for action in page.items]
    return JsonResponse(page_body(items, page, params))


@api_endpoint("POST", idempotent=True)
def create_bulk_action(request: ApiRequest) -> HttpResponse:
    body = validate(read_json_object(request, request.api.max_body), CREATE_BODY)
    if ("filter" in body) == ("runIds" in body):
        raise bad_request("Exactly one of filter or runIds must be provided")
    if "targetRegion" in body:
        raise bad_request(
            "targetRegion is not supported by Runwatch (runs have no region)"
        )
    environment = request.api.environment
    if "filter" in body:
        target = bulk.target_from_filter(environment, filter_data(body["filter"]))
    else:
        target = bulk.target_from_run_ids(environment, body["runIds"])
    action = bulk.create_bulk_action(
        target, body["action"], name=body.get("name", ""), via="api"
    )
    return JsonResponse({"id": action.friendly_id}, status=202)


@api_endpoint("GET")
def bulk_action(request: ApiRequest, bulk_id: str) -> HttpResponse:
    return JsonResponse(bulk_action_object(_bulk_action(request, bulk_id)))


@api_endpoint("POST")
def abort(request: ApiRequest, bulk_id: str) -> HttpResponse:
    action = _bulk_action(request, bulk_id)
    if not bulk.abort_bulk_action(action, via="api"):
        raise ApiError(
            409, f"Bulk action {action.friendly_id} is already {action.status.lower()}"
        )
    return JsonResponse({"id": action.friendly_id})
