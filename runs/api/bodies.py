"""Reading request bodies within their size limit, before anything is parsed.

`Content-Length` is checked first; a body sent without one (chunked, as the SDK
streams NDJSON) is read at most `limit + 1` bytes, so an oversized body is refused
(413) without being parsed or held whole. NDJSON lines are checked one by one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest

from runs.api.errors import ApiError

TOO_LARGE = "Request body too large"


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def loads(data: bytes | str):
    """json.loads without NaN/Infinity (not JSON; they could not be answered back)."""
    return json.loads(data, parse_constant=_reject_constant)


def check_content_length(request: HttpRequest, limit: int) -> None:
    raw = request.META.get("CONTENT_LENGTH") or ""
    if not raw:
        return
    try:
        length = int(raw)
    except ValueError:
        raise ApiError(400, "Invalid Content-Length header") from None
    if length > limit:
        raise ApiError(413, TOO_LARGE)


def read_body(request: HttpRequest, limit: int) -> bytes:
    """The raw body, at most `limit` bytes (413 beyond)."""
    check_content_length(request, limit)
    data = request.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, TOO_LARGE)
    return data


def read_json(request: HttpRequest, limit: int, *, required: bool = True) -> Any:
    """The decoded JSON body. An empty body is None when not `required`."""
    data = read_body(request, limit)
    if not data.strip():
        if required:
            raise ApiError(400, "Request body is empty")
        return None
    try:
        return loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "Invalid JSON") from None


def read_json_object(
    request: HttpRequest, limit: int, *, required: bool = True
) -> dict:
    body = read_json(request, limit, required=required)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(
            400, "Validation error: Expected object, received " + _kind(body)
        )
    return body


def iter_ndjson(
    request: HttpRequest, *, line_limit: int, total_limit: int
) -> Iterator[tuple[int, Any]]:
    """(line number, decoded object) for each non-blank line of an NDJSON body."""
    check_content_length(request, total_limit)
    total = 0
    number = 0
    while True:
        line = request.readline(line_limit + 2)
        if not line:
            return
        total += len(line)
        number += 1
        if total > total_limit:
            raise ApiError(413, TOO_LARGE)
        if len(line.rstrip(b"\r\n")) > line_limit:
            raise ApiError(
                413,
                f"Line {number} exceeds the maximum item size of {line_limit} bytes",
            )
        if not line.strip():
            continue
        try:
            yield number, loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ApiError(400, f"Invalid JSON on line {number}") from None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "array"
    return type(value).__name__
