"""The API served by uvicorn (`dashboard.asgi:api_application`, the documented option
for /api/ traffic): real uvicorn processes against the test database, as production
runs them. The rate limit holds across processes and a regenerated key fails at
once in a process that had it cached."""

from __future__ import annotations

import socket
import time

import pytest

from runs.models import Run
from tests.api.conftest import needs_redis

pytestmark = pytest.mark.django_db(transaction=True)


def test_uvicorn_serves_the_api_and_refuses_websockets(uvicorn, dev, deploy):
    deploy(dev, "a")
    server = uvicorn()
    status, headers, answer = server.request(
        "POST", "/api/v1/tasks/a/trigger", dev.api_key, {"payload": {"n": 1}}
    )
    assert status == 200 and headers["x-trigger-jwt"]
    assert Run.objects.get(friendly_id=answer["id"]).payload == '{"n":1}'
    status, _, run = server.request("GET", f"/api/v3/runs/{answer['id']}", dev.api_key)
    assert status == 200 and run["id"] == answer["id"]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"GET /ws/runs/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        assert not sock.recv(1024).startswith(b"HTTP/1.1 101")
    log = server.stop()
    assert "lifespan" not in log.lower() and "error" not in log.lower(), log


def test_a_key_regenerated_elsewhere_fails_at_once_under_uvicorn(uvicorn, dev, deploy):
    deploy(dev, "a")
    server = uvicorn()
    old = dev.api_key
    trigger = ("POST", "/api/v1/tasks/a/trigger")
    assert server.request(*trigger, old, {})[0] == 200  # the key is cached there
    dev.regenerate_api_key()
    assert server.request(*trigger, old, {})[0] == 401
    assert server.request(*trigger, dev.api_key, {})[0] == 200
    assert Run.objects.count() == 2


@needs_redis
def test_the_rate_limit_holds_across_uvicorn_processes(uvicorn, dev):
    limits = {
        "RUNWATCH_API_RATE_LIMIT": "300",  # leases of 3 tokens
        "RUNWATCH_API_RATE_REFILL_PER_SECOND": "1",
    }
    servers = [uvicorn(**limits), uvicorn(**limits)]
    started = time.monotonic()
    statuses = [
        servers[i % 2].request("GET", "/api/v1/runs/run_none/metadata", dev.api_key)[0]
        for i in range(450)
    ]
    elapsed = time.monotonic() - started
    allowed = statuses.count(404)  # through the limiter (no such run)
    assert statuses.count(429) == 450 - allowed
    # One bucket for both processes: 300, plus what refilled meanwhile.
    assert 300 <= allowed <= 300 + elapsed * 1 + 1
