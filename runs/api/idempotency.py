"""Request idempotency: `x-trigger-request-idempotency-key`.

The SDK sends one UUID for every retry of a logical call. The first successful
answer of a trigger/batch endpoint is stored (`IdempotentRequest`) in the same
transaction as the work itself, so a retry, even one racing the first attempt, gets
that answer again and never creates a second run. Answers expire after
`RUNWATCH_REQUEST_IDEMPOTENCY_TTL_SECONDS` (the SDK retries within about 40 s) and
are pruned as new ones are stored.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from runs.models import Environment, IdempotentRequest

HEADER = "HTTP_X_TRIGGER_REQUEST_IDEMPOTENCY_KEY"
MAX_KEY_LENGTH = 255
PRUNE_EVERY = 200  # on average, one store in this many also deletes expired answers


def request_key(request: HttpRequest) -> str | None:
    key = request.META.get(HEADER, "").strip()
    return key[:MAX_KEY_LENGTH] if key else None


def _cutoff():
    ttl = timedelta(seconds=settings.RUNWATCH_REQUEST_IDEMPOTENCY_TTL_SECONDS)
    return timezone.now() - ttl


def prune_expired() -> int:
    """Delete stored answers past their TTL (an index range scan)."""
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=_cutoff()).delete()
    return deleted


def _stored(environment: Environment, key: str) -> HttpResponse | None:
    row = IdempotentRequest.objects.filter(environment=environment, key=key).first()
    if row is None:
        return None
    if row.created_at < _cutoff():
        row.delete()
        return None
    response = JsonResponse(row.body, status=row.status_code, safe=False)
    response["x-trigger-request-idempotent-replay"] = "true"
    return response


def once(
    environment: Environment, key: str, handle: Callable[[], HttpResponse]
) -> HttpResponse:
    """The stored answer for `key`, or `handle()`'s, stored when it succeeded."""
    stored = _stored(environment, key)
    if stored is not None:
        return stored
    try:
        with transaction.atomic():
            response = handle()
            if 200 <= response.status_code < 300:
                IdempotentRequest.objects.create(
                    environment=environment,
                    key=key,
                    status_code=response.status_code,
                    body=json.loads(response.content),
                )
        if random.randrange(PRUNE_EVERY) == 0:
            prune_expired()
        return response
    except IntegrityError:
        # A concurrent attempt with the same key committed first: its work stands,
        # ours was rolled back with this transaction.
        stored = _stored(environment, key)
        if stored is None:
            raise
        return stored
