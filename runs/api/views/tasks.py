"""Triggering: one run, and batches (v3 streamed, v2 and v1 in one request)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse, JsonResponse

from runs.api import schemas
from runs.api.bodies import iter_ndjson, read_json_object
from runs.api.endpoint import ApiRequest, api_endpoint
from runs.api.errors import ApiError
from runs.api.idempotency import receipt_for, replay
from runs.api.options import raw_payload, trigger_options
from runs.api.validation import describe, errors_for, validate
from runs.batch_streams import add_batch_items, create_batch
from runs.models import Batch, Run
from runs.receipts import AlreadyAnswered, maybe_prune
from runs.triggering import BatchItem, batch_trigger, trigger

MAX_BATCH_V2_ITEMS = 500
CREATE_BATCH_MAX_BODY = 131_072


def _payload_limit() -> int:
    return settings.RUNWATCH_PAYLOAD_MAX_BYTES + 65_536  # payload + options


def _batch_limit() -> int:
    return settings.RUNWATCH_API_BATCH_BODY_MAX_BYTES


def _legacy_headers(request: ApiRequest) -> dict[str, str]:
    # From META: `request.headers` would build a mapping of every header first.
    return {
        name: request.META[meta]
        for name, meta in (
            ("idempotency-key", "HTTP_IDEMPOTENCY_KEY"),
            ("idempotency-key-ttl", "HTTP_IDEMPOTENCY_KEY_TTL"),
        )
        if request.META.get(meta)
    }


def _trigger_answer(run: Run, cached: bool) -> dict[str, Any]:
    return {"id": run.friendly_id, "isCached": cached}


@api_endpoint(
    "POST",
    public_tokens=True,
    max_body=_payload_limit,
    checked_write=True,
    public_token=lambda body: [
        f"read:runs:{body['id']}",
        f"write:inputStreams:{body['id']}",
    ],
)
def trigger_task(request: ApiRequest, task: str) -> HttpResponse:
    body = validate(
        read_json_object(request, request.api.max_body), schemas.TRIGGER_BODY
    )
    caller = request.api.caller
    caller.authorize("trigger", tasks=task)
    options = body.get("options") or {}
    if options.get("parentRunId") and not caller.is_secret_key:
        caller.authorize("write", runs=options["parentRunId"])
    trigger_opts = trigger_options(options, headers=_legacy_headers(request))
    data = raw_payload(
        caller.environment, body.get("payload"), trigger_opts.payload_type
    )
    try:
        # One statement checks the key, writes the run and stores the receipt.
        run, cached = trigger(
            caller.environment,
            task,
            options=trigger_opts,
            raw_payload=data,
            receipt=receipt_for(request.api.request_key, _trigger_answer),
            require_key=caller.key_to_check,
        )
    except AlreadyAnswered as answered:
        return replay(answered.stored)
    caller.key_verified = True  # the write checked it
    if request.api.request_key:
        maybe_prune()
    return JsonResponse(_trigger_answer(run, cached))


def _batch_item(request: ApiRequest, item: dict[str, Any], where: str) -> BatchItem:
    request.api.caller.authorize("trigger", tasks=item["task"])
    options = trigger_options(item.get("options") or {})
    try:
        data = raw_payload(
            request.api.environment, item.get("payload"), options.payload_type
        )
    except ApiError as exc:
        raise ApiError(exc.status, f"{where}: {exc.message}") from None
    return BatchItem(task_identifier=item["task"], raw_payload=data, options=options)


def _batch_items(request: ApiRequest, body: dict[str, Any]) -> list[BatchItem]:
    items = body["items"]
    if not items:
        raise ApiError(400, "Batch cannot be triggered with no items")
    if len(items) > MAX_BATCH_V2_ITEMS:
        raise ApiError(
            400,
            f"Batch size of {len(items)} is too large. "
            f"Maximum allowed batch size is {MAX_BATCH_V2_ITEMS}.",
        )
    shared = {
        key: body[key]
        for key in ("parentRunId", "resumeParentOnCompletion")
        if key in body
    }
    result = []
    for index, item in enumerate(items):
        item = {**item, "options": {**shared, **(item.get("options") or {})}}
        result.append(_batch_item(request, item, f"items[{index}]"))
    return result


@api_endpoint(
    "POST",
    public_tokens=True,
    max_body=_batch_limit,
    idempotent=True,
    public_token=lambda body: [f"read:batch:{body['id']}"],
)
def batch_trigger_v2(request: ApiRequest) -> HttpResponse:
    """`POST /api/v2/tasks/batch` (SDK ≤ 4.3.0): every item in one request."""
    body = validate(read_json_object(request, request.api.max_body), schemas.BATCH_BODY)
    batch, runs, _ = batch_trigger(request.api.environment, _batch_items(request, body))
    return JsonResponse({"id": batch.friendly_id, "runCount": len(runs)}, status=202)


@api_endpoint(
    "POST",
    max_body=_batch_limit,
    idempotent=True,
    public_token=lambda body: [f"read:batch:{body['id']}"],
)
def batch_trigger_v1(request: ApiRequest) -> HttpResponse:
    """`POST /api/v1/tasks/batch`: the documented raw-HTTP batch, with the runs listed."""
    body = validate(read_json_object(request, request.api.max_body), schemas.BATCH_BODY)
    key = request.headers.get("idempotency-key") or None
    batch, runs, cached = batch_trigger(
        request.api.environment, _batch_items(request, body), idempotency_key=key
    )
    answer: dict[str, Any] = {"id": batch.friendly_id, "isCached": cached}
    if batch.idempotency_key:
        answer["idempotencyKey"] = batch.idempotency_key
    answer["runs"] = [_batch_run(run, batch.pk) for run in runs]
    return JsonResponse(answer, status=202)


def _batch_run(run, batch_pk: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": run.friendly_id,
        "taskIdentifier": run.task_identifier,
        "isCached": run.batch_id != batch_pk,
    }
    key = run.idempotency_key_user or run.idempotency_key
    if key:
        entry["idempotencyKey"] = key
    return entry


@api_endpoint(
    "POST",
    public_tokens=True,
    max_body=CREATE_BATCH_MAX_BODY,
    idempotent=True,
    public_token=lambda body: [f"read:batch:{body['id']}"],
)
def create_batch_v3(request: ApiRequest) -> HttpResponse:
    """`POST /api/v3/batches`: phase 1 of the SDK's streamed batch."""
    body = validate(
        read_json_object(request, request.api.max_body), schemas.CREATE_BATCH_BODY
    )
    if not request.api.caller.is_secret_key:
        request.api.caller.authorize("trigger", tasks=body.get("taskIdentifiers") or [])
    batch, cached = create_batch(
        request.api.environment,
        int(body["runCount"]),
        idempotency_key=body.get("idempotencyKey"),
        parent_run_id=body.get("parentRunId"),
        resume_parent_on_completion=bool(body.get("resumeParentOnCompletion")),
    )
    answer: dict[str, Any] = {
        "id": batch.friendly_id,
        "runCount": batch.run_count,
        "isCached": cached,
    }
    if batch.idempotency_key:
        answer["idempotencyKey"] = batch.idempotency_key
    return JsonResponse(answer, status=202)


@api_endpoint(
    "POST",
    public_tokens=True,
    max_body=lambda: settings.RUNWATCH_API_BATCH_STREAM_MAX_BYTES,
)
def stream_batch_items(request: ApiRequest, batch_id: str) -> HttpResponse:
    """`POST /api/v3/batches/{id}/items`: NDJSON items, deduplicated by index."""
    content_type = request.content_type or ""
    if "ndjson" not in content_type:
        raise ApiError(
            415, "Content-Type must be application/x-ndjson or application/ndjson"
        )
    batch = Batch.objects.filter(
        environment=request.api.environment, friendly_id=batch_id
    ).first()
    if batch is None:
        raise ApiError(422, f"Batch {batch_id} not found")
    items = []
    for number, line in iter_ndjson(
        request, line_limit=_item_limit(), total_limit=request.api.max_body
    ):
        found = errors_for(line, schemas.BATCH_ITEM_LINE)
        if found:
            raise ApiError(400, f"Line {number}: {describe(found)}", details=found)
        items.append(
            (int(line["index"]), _batch_item(request, line, f"item {line['index']}"))
        )
    added = add_batch_items(batch, items)
    answer: dict[str, Any] = {
        "id": batch.friendly_id,
        "itemsAccepted": added.accepted,
        "itemsDeduplicated": added.deduplicated,
        "sealed": added.sealed,
    }
    if not added.sealed:
        answer["enqueuedCount"] = added.received
        answer["expectedCount"] = added.expected
    return JsonResponse(answer)


def _item_limit() -> int:
    return settings.RUNWATCH_PAYLOAD_MAX_BYTES
