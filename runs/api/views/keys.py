"""Idempotency key reset and the claims the SDK signs public tokens with."""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse

from runs.api import schemas
from runs.api.bodies import read_json_object
from runs.api.endpoint import ApiRequest, api_endpoint
from runs.api.validation import validate
from runs.triggering import reset_idempotency_key


@api_endpoint("POST")
def reset_key(request: ApiRequest, key: str) -> HttpResponse:
    body = validate(
        read_json_object(request, request.api.max_body), schemas.RESET_IDEMPOTENCY_BODY
    )
    reset_idempotency_key(request.api.environment, body["taskIdentifier"], key)
    return JsonResponse({"id": key})


@api_endpoint("POST")
def jwt_claims(request: ApiRequest) -> HttpResponse:
    """`auth.createPublicToken()` asks for these, then signs the token itself."""
    return JsonResponse({"sub": str(request.api.environment.pk), "pub": True})
