"""Request idempotency: `x-trigger-request-idempotency-key`.

The SDK sends one UUID for every retry of a logical call. The first successful
answer of a trigger/batch endpoint is stored (`runs.receipts`) with the work itself,
so a retry, even one racing the first attempt, gets that answer again (marked
`x-trigger-request-idempotent-replay: true`) and never creates a second run.

Two ways to store it: `once` runs any view in a transaction and stores its answer
there (batches); a trigger hands `receipt_for`'s receipt to the trigger service,
which writes it in the statement that writes the run (no transaction, no lookup
first: the statement itself finds a stored answer).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from runs import receipts
from runs.models import Environment, IdempotentRequest, Run
from runs.receipts import Receipt

HEADER = "HTTP_X_TRIGGER_REQUEST_IDEMPOTENCY_KEY"
MAX_KEY_LENGTH = 255


def request_key(request: HttpRequest) -> str | None:
    key = request.META.get(HEADER, "").strip()
    return key[:MAX_KEY_LENGTH] if key else None


def replay(stored: IdempotentRequest) -> HttpResponse:
    """The stored first answer, sent again."""
    response = JsonResponse(stored.body, status=stored.status_code, safe=False)
    response["x-trigger-request-idempotent-replay"] = "true"
    return response


def replay_if_answered(
    environment: Environment, key: str, response: HttpResponse
) -> HttpResponse:
    """The stored answer for `key` if there is one, else `response`."""
    stored = receipts.live_answer(environment, key)
    return replay(stored) if stored is not None else response


def receipt_for(
    key: str | None, answer: Callable[[Run, bool], dict[str, Any]]
) -> Receipt | None:
    """The receipt a trigger service stores for this request (None without a
    request key): `answer(run, cached)` is the 200 answer's body."""
    if key is None:
        return None
    return Receipt(key, lambda run, cached: (200, answer(run, cached)))


def once(
    environment: Environment, key: str, handle: Callable[[], HttpResponse]
) -> HttpResponse:
    """The stored answer for `key`, or `handle()`'s, stored when it succeeded."""
    stored = receipts.live_answer(environment, key)
    if stored is not None:
        return replay(stored)
    try:
        with transaction.atomic():
            response = handle()
            if 200 <= response.status_code < 300:
                body = json.loads(response.content)
                receipts.save_answer(environment, key, response.status_code, body)
        receipts.maybe_prune()
        return response
    except receipts.AlreadyAnswered as answered:
        # A concurrent attempt with the same key committed first: its work stands,
        # ours was rolled back with this transaction.
        return replay(answered.stored)
