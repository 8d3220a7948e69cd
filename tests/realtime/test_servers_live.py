"""The whole site, websockets included, on every server command the README gives:
`manage.py serve` (the quick start), daphne on uvloop (`python -m dashboard.server`, the
production layout) and uvicorn (websockets-sansio). bench/live.py compares them."""

from __future__ import annotations

import pytest
from websockets.sync.client import connect

from runs.lifecycle import transition
from runs.statuses import RunStatus
from tests.realtime.conftest import rows_in, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def _watch_a_run_change(server, user, run) -> None:
    headers = {
        "Origin": f"http://127.0.0.1:{server.port}",
        "Cookie": session_cookie(user).decode(),
    }
    url = f"ws://127.0.0.1:{server.port}/ws/env/dev/runs/"
    with connect(url, additional_headers=headers, open_timeout=10) as socket:
        assert rows_in(socket.recv(timeout=10)) == {run.friendly_id: ("QUEUED", False)}
        transition(run.pk, RunStatus.DEQUEUED)
        assert rows_in(socket.recv(timeout=10)) == {
            run.friendly_id: ("DEQUEUED", False)
        }


def test_manage_py_serve_runs_daphne_on_uvloop_and_stops_on_ctrl_c(
    manage_py_serve, alice, dev, make_run
):
    run = make_run(dev)
    _watch_a_run_change(manage_py_serve, alice, run)
    assert manage_py_serve.interrupt() == 0
    log = manage_py_serve.log.read_text()
    assert "Runwatch is up" in log, log
    assert "server: daphne on uvloop" in log, log
    assert "Traceback" not in log, log


def test_the_live_feed_runs_on_daphne_on_uvloop(daphne_on_uvloop, alice, dev, make_run):
    run = make_run(dev)
    _watch_a_run_change(daphne_on_uvloop, alice, run)
    log = daphne_on_uvloop.stop()
    assert "daphne on uvloop" in log, log
    assert "error" not in log.lower(), log


def test_the_live_feed_runs_on_uvicorn(uvicorn, alice, dev, make_run):
    run = make_run(dev)
    server = uvicorn(
        *("--ws", "websockets-sansio", "--lifespan", "off"),
        app="dashboard.asgi:application",
    )
    _watch_a_run_change(server, alice, run)
    log = server.stop()
    assert "error" not in log.lower(), log
