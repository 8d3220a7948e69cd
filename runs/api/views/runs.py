"""Runs: list, retrieve, cancel, replay, reschedule, metadata, tags."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpResponse, JsonResponse

from runs import packets
from runs.actions import add_tags, cancel_run, reschedule
from runs.api import schemas
from runs.api.bodies import read_json_object
from runs.api.endpoint import ApiRequest, api_endpoint
from runs.api.errors import ApiError
from runs.api.packet_urls import download_url
from runs.api.presenters import (
    LIST_COLUMNS,
    RUN_COLUMNS,
    list_item,
    page_body,
    run_object,
)
from runs.api.queries import page_params, run_filter
from runs.api.validation import validate
from runs.metadata import MetadataUpdate, update_metadata
from runs.models import Run
from runs.pagination import paginate
from runs.triggering import ReplayOverrides, replay

METADATA_MAX_BODY = 2_097_152


def _run(request: ApiRequest, run_id: str, *, related: bool = False) -> Run:
    """The run in the caller's environment, or 404 (another environment's too)."""
    runs = Run.objects.filter(environment=request.api.environment, friendly_id=run_id)
    if related:
        runs = runs.select_related("batch", "parent__batch", "root__batch")
    run = runs.first()
    if run is None:
        raise ApiError(404, "Run not found")
    return run


def _run_object(request: ApiRequest, run: Run) -> dict[str, Any]:
    children = list(
        run.children.select_related("batch")
        .only(*RUN_COLUMNS, "batch__friendly_id")
        .order_by("created_at", "id")
    )
    return run_object(
        run,
        legacy=request.api.legacy,
        children=children,
        packet_url=lambda path: download_url(request, request.api.environment, path),
    )


@api_endpoint("GET", public_tokens=True)
def list_runs(request: ApiRequest) -> HttpResponse:
    request.api.caller.authorize("read", runs=[])
    params = page_params(request)
    queryset = (
        Run.objects.for_environment(request.api.environment)
        .select_related("environment")
        .only(*LIST_COLUMNS)
    )
    filtered = run_filter(request, queryset, request.api.environment).qs
    page = paginate(
        filtered, size=params.size, after=params.after, before=params.before
    )
    items = [list_item(run, legacy=request.api.legacy) for run in page.items]
    return JsonResponse(page_body(items, page, params))


@api_endpoint("GET", public_tokens=True)
def retrieve_run(request: ApiRequest, run_id: str) -> HttpResponse:
    run = _run(request, run_id, related=True)
    request.api.caller.authorize(
        "read",
        runs=run.friendly_id,
        tasks=run.task_identifier,
        tags=run.tags,
        batch=run.batch.friendly_id if run.batch_id else None,
    )
    return JsonResponse(_run_object(request, run))


@api_endpoint("POST", public_tokens=True)
def cancel(request: ApiRequest, run_id: str) -> HttpResponse:
    run = _run(request, run_id)
    request.api.caller.authorize(
        "write", runs=run.friendly_id, tasks=run.task_identifier
    )
    cancel_run(run)
    return JsonResponse({"id": run.friendly_id})


def _replay_overrides(body: dict[str, Any]) -> ReplayOverrides:
    overrides = ReplayOverrides(
        metadata=body.get("metadata"),
        tags=body.get("tags"),
        queue=body.get("queue"),
        concurrency_key=None
        if body.get("concurrencyKey") is None
        else str(body["concurrencyKey"]),
        machine=body.get("machine"),
        version=body.get("version"),
        delay=body.get("delay"),
        ttl=body.get("ttl"),
        idempotency_key=body.get("idempotencyKey"),
        idempotency_key_ttl=body.get("idempotencyKeyTTL"),
        max_attempts=body.get("maxAttempts"),
        max_duration=None
        if body.get("maxDuration") is None
        else int(body["maxDuration"]),
        priority=body.get("priority"),
    )
    if "payload" in body:
        payload_type = body.get("payloadType") or packets.JSON
        if payload_type == packets.SUPERJSON:
            if not isinstance(body["payload"], str):
                raise ApiError(
                    400,
                    "payload must be a SuperJSON string when payloadType is application/super+json",
                )
            overrides.raw_payload = body["payload"]
        else:
            overrides.raw_payload = json.dumps(
                body["payload"], separators=(",", ":"), ensure_ascii=False
            )
        overrides.payload_type = payload_type
    return overrides


@api_endpoint("POST", max_body=lambda: settings.RUNWATCH_PAYLOAD_MAX_BYTES + 65_536)
def replay_run(request: ApiRequest, run_id: str) -> HttpResponse:
    run = _run(request, run_id)
    body = validate(
        read_json_object(request, request.api.max_body, required=False),
        schemas.REPLAY_BODY,
    )
    new_run = replay(run, _replay_overrides(body) if body else None)
    return JsonResponse({"id": new_run.friendly_id})


@api_endpoint("POST")
def reschedule_run(request: ApiRequest, run_id: str) -> HttpResponse:
    run = _run(request, run_id)
    body = validate(
        read_json_object(request, request.api.max_body), schemas.RESCHEDULE_BODY
    )
    run = reschedule(run, body["delay"])
    return JsonResponse(
        _run_object(request, _run(request, run.friendly_id, related=True))
    )


@api_endpoint("GET", "PUT", public_tokens=True, max_body=METADATA_MAX_BODY)
def run_metadata(request: ApiRequest, run_id: str) -> HttpResponse:
    run = _run(request, run_id)
    if request.method == "GET":
        request.api.caller.authorize(
            "read", runs=run.friendly_id, tasks=run.task_identifier
        )
        return JsonResponse(
            {"metadata": run.metadata or {}, "metadataType": "application/json"}
        )
    request.api.caller.authorize(
        "write", runs=run.friendly_id, tasks=run.task_identifier
    )
    body = validate(
        read_json_object(request, request.api.max_body), schemas.METADATA_BODY
    )
    update = MetadataUpdate(
        metadata=body.get("metadata"),
        operations=body.get("operations"),
        parent_operations=body.get("parentOperations") or [],
        root_operations=body.get("rootOperations") or [],
    )
    return JsonResponse({"metadata": update_metadata(run, update)})


@api_endpoint("POST", public_tokens=True)
def run_tags(request: ApiRequest, run_id: str) -> HttpResponse:
    run = _run(request, run_id)
    request.api.caller.authorize(
        "write", runs=run.friendly_id, tasks=run.task_identifier
    )
    body = validate(read_json_object(request, request.api.max_body), schemas.TAGS_BODY)
    return JsonResponse({"message": add_tags(run, body["tags"])})
