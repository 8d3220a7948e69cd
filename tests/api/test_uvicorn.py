"""The API served by uvicorn (`dashboard.asgi:api_application`, the documented option
for /api/ traffic): real uvicorn processes against the test database, as production
runs them. The rate limit holds across processes and a regenerated key fails at
once in a process that had it cached."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

from runs.models import Run

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    """The test database, as a URL for another process."""
    db = connections["default"].settings_dict
    if not settings.IS_POSTGRES:
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] or "postgres"
    return f"postgresql://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Uvicorn:
    def __init__(self, log: Path, **env: str) -> None:
        self.port = _free_port()
        self.log = log
        command = [
            *(sys.executable, "-m", "uvicorn", "dashboard.asgi:api_application"),
            *("--host", "127.0.0.1", "--port", str(self.port), "--no-access-log"),
        ]
        environment = {**os.environ, "DATABASE_URL": _database_url(), **env}
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stderr=log.open("w")
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                self.request("OPTIONS", "/api/v1/runs")
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(self.log.read_text()) from None
                time.sleep(0.2)

    def request(self, method: str, path: str, key: str = "", body=None):
        """(status, headers, JSON answer or None)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method
        )
        request.add_header("Content-Type", "application/json")
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                status, headers, content = answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as error:
            status, headers, content = error.code, error.headers, error.read()
        return status, headers, json.loads(content) if content else None

    def stop(self) -> str:
        self.process.terminate()
        self.process.wait(20)
        return self.log.read_text()


@pytest.fixture
def uvicorn(tmp_path):
    """uvicorn(**env) starts a uvicorn process serving the API (stopped at the end)."""
    started: list[Uvicorn] = []

    def start(**env: str) -> Uvicorn:
        server = Uvicorn(tmp_path / f"uvicorn-{len(started)}.log", **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


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


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (set REDIS_URL)")
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
