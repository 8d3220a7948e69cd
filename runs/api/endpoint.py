"""`@api_endpoint`: everything an API view needs besides its own work.

    @api_endpoint("POST", max_body=settings.RUNWATCH_PAYLOAD_MAX_BYTES, idempotent=True)
    def trigger_task(request: ApiRequest, task: str) -> HttpResponse:
        body = read_json_object(request, request.api.max_body)
        validate(body, schemas.TRIGGER_BODY)
        request.api.caller.authorize("trigger", tasks=task)
        run, cached = trigger(request.api.environment, task, ...)
        return JsonResponse({"id": run.friendly_id, "isCached": cached})

In order, for every request: method check (405), per-key rate limit (429, and
`x-ratelimit-*` headers on every answer), authentication (401; `public_tokens=True`
also accepts scoped public JWTs, which the view then checks with
`request.api.caller.authorize`), `Content-Length` against `max_body` (413), then
the view. Request idempotency (`idempotent=True`) replays a stored first answer.
`public_token=lambda body: [scopes]` adds `x-trigger-jwt`/`x-trigger-jwt-claims`
headers (a 1-hour token signed with the environment key) to successful answers,
replayed ones included.

Views raise `ApiError` (or a `runs.errors.RunError` from a service: its
`status_code` and message are used) and never build error bodies themselves; any
other exception becomes a logged 500. Views are CSRF-exempt (bearer auth).
`request.api` also carries `legacy` (status names for this request) and `max_body`.
Answers allow any origin (CORS; bearer auth, no cookies) and OPTIONS preflights get 204.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import DatabaseError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from runs.api import ratelimit, tokens
from runs.api.auth import Caller, authenticate
from runs.api.bodies import check_content_length
from runs.api.errors import ApiError, error_response
from runs.api.idempotency import once, replay_if_answered, request_key
from runs.api.presenters import uses_legacy_statuses
from runs.errors import INVALID_KEY, RunError
from runs.models import Environment
from runs.pagination import InvalidCursor

logger = logging.getLogger("runwatch.api")

DEFAULT_MAX_BODY = 1_048_576


@dataclass
class ApiContext:
    caller: Caller
    legacy: bool
    max_body: int
    request_key: str | None = None  # x-trigger-request-idempotency-key

    @property
    def environment(self) -> Environment:
        return self.caller.environment


class ApiRequest(HttpRequest):
    api: ApiContext


def api_endpoint(
    *methods: str,
    public_tokens: bool = False,
    max_body: int | Callable[[], int] = DEFAULT_MAX_BODY,
    idempotent: bool = False,
    checked_write: bool = False,
    public_token: Callable[[dict], list[str]] | None = None,
) -> Callable:
    """`checked_write`: the view's one write checks the caller's key and stores the
    request receipt itself (`runs.triggering.trigger(require_key=…, receipt=…)`,
    see `runs.api.idempotency.receipt_for`), so the endpoint reads the key only for
    answers that write did not vouch for, and wraps the view in no transaction."""
    allowed = tuple(m.upper() for m in methods) or ("GET",)

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method == "OPTIONS":  # CORS preflight
                return _with_cors(HttpResponse(status=204), allowed)
            return _with_cors(_answer(request, *args, **kwargs), allowed)

        def _answer(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in allowed:
                response = error_response(405, "Method not allowed")
                response["Allow"] = ", ".join(allowed)
                return response
            decision = ratelimit.take(
                ratelimit.bucket_key(
                    request.META.get("HTTP_AUTHORIZATION", ""),
                    request.META.get("REMOTE_ADDR", ""),
                )
            )
            if decision is not None and not decision.allowed:
                return decision.response()
            response = _handle(request, args, kwargs)
            if decision is not None:
                for name, value in decision.headers().items():
                    response[name] = value
            return response

        def _handle(request, args, kwargs) -> HttpResponse:
            try:
                caller = authenticate(
                    request, public_tokens=public_tokens, verify=not checked_write
                )
            except Exception as exc:
                return _error_answer(request, exc)
            limit = max_body() if callable(max_body) else max_body
            key = request_key(request) if idempotent or checked_write else None
            request.api = ApiContext(caller, uses_legacy_statuses(request), limit, key)
            response = _respond(request, args, kwargs)
            if not caller.key_verified:  # an answer the write did not vouch for
                try:
                    response = _vouch(caller, key, response)
                except Exception as exc:
                    return _error_answer(request, exc)
            if public_token is not None and 200 <= response.status_code < 300:
                _add_public_token(response, caller.environment, public_token)
            return response

        def _respond(request, args, kwargs) -> HttpResponse:
            try:
                check_content_length(request, request.api.max_body)
                key = request.api.request_key
                if idempotent and key:
                    return once(
                        request.api.environment,
                        key,
                        lambda: view(request, *args, **kwargs),
                    )
                return view(request, *args, **kwargs)
            except Exception as exc:  # every error becomes an answer
                return _error_answer(request, exc)

        return wrapper

    return decorate


def _vouch(caller: Caller, key: str | None, response: HttpResponse) -> HttpResponse:
    """An answer to a caller whose key no statement checked: read the key now (a
    revoked one gets 401, whatever the view said); an error answer to a request
    whose first attempt succeeded becomes that attempt's answer."""
    if not caller.verify_key():
        return error_response(401, INVALID_KEY)
    if key and response.status_code >= 400:
        return replay_if_answered(caller.environment, key, response)
    return response


def _error_answer(request: HttpRequest, exc: Exception) -> HttpResponse:
    """The JSON answer for an exception a view raised."""
    if isinstance(exc, ApiError):
        return exc.response()
    if isinstance(exc, RunError):
        return error_response(exc.status_code, exc.message)
    if isinstance(exc, InvalidCursor):
        return error_response(400, str(exc))
    if isinstance(exc, OverflowError):  # e.g. a delay of 10^15 weeks
        return error_response(400, "A number or duration is out of range")
    if isinstance(exc, OperationalError):
        logger.exception("database error in %s", request.path)
        return error_response(
            503, "Database temporarily unavailable", should_retry=True
        )
    if isinstance(exc, DatabaseError):
        logger.exception("database error in %s", request.path)
        return error_response(500, "Internal Server Error")
    logger.exception("unhandled error in %s", request.path)
    return error_response(500, "Internal Server Error")


CORS_HEADERS = {
    # Bearer tokens, never cookies: any origin may call (public tokens in browsers).
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "authorization, content-type, trigger-version, "
    "x-trigger-api-version, x-trigger-request-idempotency-key, x-trigger-source, "
    "x-trigger-client, x-trigger-branch, idempotency-key, idempotency-key-ttl",
    "Access-Control-Expose-Headers": "x-trigger-jwt, x-trigger-jwt-claims, "
    "x-should-retry, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset",
    "Access-Control-Max-Age": "600",
}


def _with_cors(response: HttpResponse, methods: tuple[str, ...]) -> HttpResponse:
    for name, value in CORS_HEADERS.items():
        response[name] = value
    response["Access-Control-Allow-Methods"] = ", ".join((*methods, "OPTIONS"))
    return response


def _add_public_token(
    response: HttpResponse,
    environment: Environment,
    scopes_for: Callable[[dict], list[str]],
) -> None:
    body = json.loads(response.content)
    claims = tokens.public_claims(environment.pk, scopes_for(body))
    response["x-trigger-jwt"] = tokens.sign(claims, environment.api_key)
    response["x-trigger-jwt-claims"] = json.dumps(
        {"sub": claims["sub"], "pub": True}, separators=(",", ":")
    )
