"""API test helpers: a client that speaks for one environment's key."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from runs.api.auth import known_keys

SDK_VERSION_HEADER = {"x-trigger-api-version": "2025-07-16"}


class ApiClient:
    """Django's test client with `Authorization: Bearer <key>` and JSON bodies."""

    def __init__(self, key: str, *, sdk: bool = True) -> None:
        self.client = Client()
        self.key = key
        self.sdk = sdk
        # Read the keys now, so that query counts of the first request are those
        # of every later one (a process loads them once, on an unknown key).
        known_keys.environments(reload=True)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"authorization": f"Bearer {self.key}"} if self.key else {}
        if self.sdk:
            headers.update(SDK_VERSION_HEADER)
        headers.update(extra or {})
        return headers

    def get(self, path: str, params: dict | None = None, **headers: str):
        return self.client.get(path, params or {}, headers=self.headers(headers))

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | str | None = None,
        content_type: str = "application/json",
        **headers: str,
    ):
        data = raw if raw is not None else ("" if body is None else json.dumps(body))
        return getattr(self.client, method.lower())(
            path, data, content_type=content_type, headers=self.headers(headers)
        )

    def post(self, path: str, body: Any = None, **kwargs):
        return self.send("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs):
        return self.send("PUT", path, body, **kwargs)


@pytest.fixture
def api(dev) -> ApiClient:
    """The dev environment's secret key, sending the SDK's API version header."""
    return ApiClient(dev.api_key)


@pytest.fixture
def legacy_api(dev) -> ApiClient:
    """The dev key without x-trigger-api-version (legacy status names)."""
    return ApiClient(dev.api_key, sdk=False)


@pytest.fixture
def prod_api(prod) -> ApiClient:
    return ApiClient(prod.api_key)


# Values that are the user's own data, where a null is legitimate content.
USER_DATA_KEYS = {"payload", "output", "metadata"}


def assert_no_nulls(value: Any, path: str = "$") -> None:
    """Fail on any JSON null anywhere in an answer (optional fields are omitted),
    except inside the user's own payload, output and metadata values."""
    assert value is not None, f"null at {path}"
    if isinstance(value, dict):
        for key, item in value.items():
            if key in USER_DATA_KEYS and item is not None:
                continue
            assert_no_nulls(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_no_nulls(item, f"{path}[{index}]")


needs_redis = pytest.mark.skipif(
    not settings.REDIS_URL, reason="needs Redis (set REDIS_URL)"
)
