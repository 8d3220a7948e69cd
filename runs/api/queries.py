"""Query-string parameters: `page[...]` and the runs list's `filter[...]`.

Bad values are 400 `{"error": "Query Error", "details": [{code, message, path}]}`,
as Trigger.dev answers them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from django.http import HttpRequest

from runs.api.errors import ApiError
from runs.filters import API_PARAMS, RunFilter, api_params_to_filter_data

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
BOOLEAN_VALUES = {"true": "true", "false": "false"}
# Trigger.dev filters Runwatch has nothing to match with: runs have no region and no error groups.
UNSUPPORTED_FILTERS = {"region", "error", "env"}


def query_error(message: str, path: list[str]) -> ApiError:
    return ApiError(
        400,
        "Query Error",
        details=[{"code": "custom", "message": message, "path": path}],
    )


@dataclass(frozen=True)
class PageParams:
    size: int
    after: str | None  # a runs.pagination cursor, unwrapped
    before: str | None
    generation: int = 0

    def wrap(self, cursor: str | None) -> str | None:
        """An API cursor for a cursor of the page these parameters fetched."""
        if not cursor:
            return None
        raw = json.dumps({"k": cursor, "g": self.generation + 1}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def _unwrap(cursor: str, name: str) -> tuple[str, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return str(data["k"]), int(data["g"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise query_error(f"Invalid cursor in {name}", [name]) from None


def page_params(
    request: HttpRequest, default_size: int = DEFAULT_PAGE_SIZE
) -> PageParams:
    """`page[size]`, `page[after]`, `page[before]`.

    The SDK's page objects merge each new cursor into the previous request's
    parameters, so going back from a forward page sends both `after` (stale) and
    `before`. Cursors therefore carry a generation, and the newer one wins.
    """
    raw = request.GET.get("page[size]", "").strip()
    size = default_size
    if raw:
        if not re.fullmatch(r"\d+", raw) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
            raise query_error(
                f"page[size] must be an integer from 1 to {MAX_PAGE_SIZE}, got {raw!r}",
                ["page[size]"],
            )
        size = int(raw)
    after = request.GET.get("page[after]", "").strip()
    before = request.GET.get("page[before]", "").strip()
    after_key, after_gen = _unwrap(after, "page[after]") if after else (None, -1)
    before_key, before_gen = _unwrap(before, "page[before]") if before else (None, -1)
    if after_key and before_key:
        if after_gen > before_gen:
            before_key = None
        else:
            after_key = None
    return PageParams(size, after_key, before_key, max(after_gen, before_gen, 0))


def run_filter(request: HttpRequest, queryset, environment) -> RunFilter:
    """A valid RunFilter over `queryset` (one environment's runs) from the
    `filter[...]` parameters, or 400."""
    for key in request.GET:
        if not key.startswith("filter["):
            continue
        parts = re.findall(r"\[([^\]]*)\]", key[len("filter") :])
        name = parts[0] if parts else ""
        full = name + "".join(f"[{p}]" for p in parts[1:])
        if name in UNSUPPORTED_FILTERS:
            raise query_error(f"{key} is not supported by Runwatch", [key])
        if full not in API_PARAMS and name not in API_PARAMS:
            raise query_error(f"Unknown filter: {key}", [key])
    is_test = request.GET.get("filter[isTest]")
    if is_test is not None and is_test.strip().lower() not in BOOLEAN_VALUES:
        raise query_error(
            f"filter[isTest] must be true or false, got {is_test!r}", ["filter[isTest]"]
        )
    data = api_params_to_filter_data(request.GET)
    if "is_test" in data:
        data["is_test"] = BOOLEAN_VALUES[str(data["is_test"]).strip().lower()]
    filterset = RunFilter(data, queryset=queryset, environment=environment)
    if not filterset.is_valid():
        raise ApiError(
            400,
            "Query Error",
            details=[
                {"code": "custom", "message": message, "path": [_api_name(field)]}
                for field, messages in filterset.form.errors.items()
                for message in messages
            ],
        )
    return filterset


def _api_name(field: str) -> str:
    for api_name, target in API_PARAMS.items():
        if target == field or (field == "from_" and target == "from"):
            base, bracket, rest = api_name.partition("[")
            return f"filter[{base}]{bracket}{rest}"
    return field
