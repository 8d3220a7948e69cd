"""Batches: retrieve (v2 with processing details, v1 with counts)."""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse

from runs.api.endpoint import ApiRequest, api_endpoint
from runs.api.errors import ApiError
from runs.api.presenters import batch_object
from runs.batch_streams import batch_run_ids
from runs.models import Batch


def _retrieve(request: ApiRequest, batch_id: str, version: int) -> HttpResponse:
    batch = Batch.objects.filter(
        environment=request.api.environment, friendly_id=batch_id
    ).first()
    if batch is None:
        raise ApiError(404, "Batch not found")
    request.api.caller.authorize("read", batch=batch.friendly_id, runs=[])
    return JsonResponse(batch_object(batch, batch_run_ids(batch), version=version))


@api_endpoint("GET", public_tokens=True)
def retrieve_batch_v2(request: ApiRequest, batch_id: str) -> HttpResponse:
    return _retrieve(request, batch_id, 2)


@api_endpoint("GET", public_tokens=True)
def retrieve_batch_v1(request: ApiRequest, batch_id: str) -> HttpResponse:
    return _retrieve(request, batch_id, 1)
