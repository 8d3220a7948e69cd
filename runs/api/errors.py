"""JSON error answers: `{"error": "<message>"}` (plus `details` for validation errors).

Every error the API returns goes through `error_response`, which also sets
`x-should-retry`: `false` on answers a retry cannot change (bad input, unknown ids,
limits), so the SDK fails at once instead of backing off for ~9 s; `true` only where
a retry may succeed (a transient database error). 429 carries no such header: the SDK
then waits for `x-ratelimit-reset`.
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse


class ApiError(Exception):
    """Raise from a view (or a helper it calls) to answer with an error."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        should_retry: bool | None = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.should_retry = should_retry
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        return error_response(
            self.status,
            self.message,
            details=self.details,
            should_retry=self.should_retry,
            headers=self.headers,
        )


def error_response(
    status: int,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    should_retry: bool | None = False,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    response = JsonResponse(body, status=status)
    if should_retry is not None:
        response["x-should-retry"] = "true" if should_retry else "false"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def not_found(message: str = "Not found") -> ApiError:
    return ApiError(404, message)


def bad_request(message: str, details: list[dict[str, Any]] | None = None) -> ApiError:
    return ApiError(400, message, details=details)
