"""Real server processes for tests (`manage.py serve`, daphne on uvloop via
`python -m dashboard.server`, uvicorn) against the test database, as production runs
them."""

from __future__ import annotations

import json
import os
import signal
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

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The test database this test process uses, as a URL for another process."""
    db = connections["default"].settings_dict
    if not settings.IS_POSTGRES:
        return f"sqlite:///{db['NAME']}"
    auth = (db["USER"] or "postgres") + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    host = db["HOST"] or "127.0.0.1"
    return f"postgresql://{auth}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


class ServerProcess:
    def __init__(self, log: Path, command: list[str], port: int, **env: str) -> None:
        self.port = port
        self.log = log
        # the test database, and the test run's secret key (required with a URL)
        environment = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "SECRET_KEY": settings.SECRET_KEY,
            **env,
        }
        with log.open("w") as out:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Ctrl-C stops it (a shell running the suite in the background
                # ignores it)
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
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

    def interrupt(self, timeout: float = 20) -> int:
        """Ctrl-C; the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)


@pytest.fixture
def uvicorn(tmp_path):
    """uvicorn(*options, app=..., **env) starts a uvicorn process (by default serving
    the API only) against the test database; all are stopped at the end."""
    started: list[ServerProcess] = []

    def start(
        *options: str, app: str = "dashboard.asgi:api_application", **env: str
    ) -> ServerProcess:
        port = _free_port()
        command = [
            *(sys.executable, "-m", "uvicorn", app, *options),
            *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
        ]
        log = tmp_path / f"uvicorn-{len(started)}.log"
        started.append(ServerProcess(log, command, port, **env))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def manage_py_serve(tmp_path):
    """Starts `manage.py serve --no-worker` (the README's quick start, without the
    embedded worker) against the test database; stopped at the end."""
    port = _free_port()
    command = [sys.executable, "manage.py", "serve", "--no-worker", "--port", str(port)]
    server = ServerProcess(tmp_path / "serve.log", command, port)
    yield server
    server.stop()


@pytest.fixture
def daphne_on_uvloop(tmp_path):
    """Starts `python -m dashboard.server` (daphne on uvloop) serving the whole site
    against the test database; stopped at the end."""
    port = _free_port()
    command = [
        *(sys.executable, "-m", "dashboard.server", "-v", "1"),
        *("-b", "127.0.0.1", "-p", str(port), "dashboard.asgi:application"),
    ]
    server = ServerProcess(tmp_path / "daphne.log", command, port)
    yield server
    server.stop()
