"""The lean ASGI handler for /api/: the same views and answers, only the API's
middleware, and the rest of the site still through Django's own handler."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.db import connections

from runs.api.asgi import ApiHandler, route_api
from runs.models import Run


def _call(app, method: str, path: str, headers: dict[str, str], body: bytes = b""):
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "headers": [(b"host", b"127.0.0.1:8000")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    content = b"".join(m.get("body", b"") for m in sent[1:])
    return (
        start["status"],
        {k.decode().lower(): v.decode() for k, v in start["headers"]},
        content,
    )


@pytest.fixture
def handler():
    api = ApiHandler(threads=1)
    yield api
    # Its thread keeps a database connection between requests: close it.
    api.executor().submit(connections.close_all).result()
    api.executor().shutdown()


@pytest.mark.django_db(transaction=True)
def test_trigger_through_the_lean_handler(handler, dev, deploy):
    deploy(dev, "a")
    headers = {
        "Authorization": f"Bearer {dev.api_key}",
        "Content-Type": "application/json",
    }
    body = json.dumps({"payload": {"x": 1}, "options": {"tags": ["t"]}}).encode()
    status, answer_headers, content = _call(
        handler, "POST", "/api/v1/tasks/a/trigger", headers, body
    )
    assert status == 200
    run_id = json.loads(content)["id"]
    assert Run.objects.get(friendly_id=run_id).tags == ["t"]
    assert answer_headers["x-trigger-jwt"]
    assert answer_headers["x-content-type-options"] == "nosniff"  # security middleware
    assert "set-cookie" not in answer_headers  # no session or CSRF middleware
    status, _, content = _call(handler, "GET", f"/api/v3/runs/{run_id}", headers)
    assert status == 200 and json.loads(content)["id"] == run_id


@pytest.mark.django_db(transaction=True)
def test_errors_are_the_apis(handler, dev):
    status, headers, content = _call(
        handler, "POST", "/api/v1/tasks/a/trigger", {"Authorization": "Bearer tr_dev_x"}
    )
    assert status == 401 and json.loads(content) == {
        "error": "Invalid or Missing API key"
    }
    assert headers["x-should-retry"] == "false"
    regenerated = dev.api_key
    dev.regenerate_api_key()
    status, _, _ = _call(
        handler, "GET", "/api/v1/runs", {"Authorization": f"Bearer {regenerated}"}
    )
    assert status == 401


def test_only_api_paths_go_to_the_api_handler():
    seen = []

    def recorder(name):
        async def app(scope, receive, send):
            seen.append(name)

        return app

    app = route_api(recorder("api"), recorder("django"))
    for path in ("/api/v1/runs", "/apikeys/", "/", "/api"):
        asyncio.run(app({"type": "http", "path": path}, None, None))
    asyncio.run(app({"type": "websocket", "path": "/api/ws"}, None, None))
    assert seen == ["api", "django", "django", "django", "django"]
