"""The whole site, websockets included, on uvicorn (websockets-sansio): the live feed
works there too (bench/live.py --server uvicorn compares it with daphne)."""

from __future__ import annotations

import pytest
from websockets.sync.client import connect

from runs.lifecycle import transition
from runs.statuses import RunStatus
from tests.realtime.conftest import rows_in, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_live_feed_runs_on_uvicorn(uvicorn, alice, dev, make_run):
    run = make_run(dev)
    server = uvicorn(
        *("--ws", "websockets-sansio", "--lifespan", "off"),
        app="dashboard.asgi:application",
    )
    headers = {
        "Origin": f"http://127.0.0.1:{server.port}",
        "Cookie": session_cookie(alice).decode(),
    }
    url = f"ws://127.0.0.1:{server.port}/ws/env/dev/runs/"
    with connect(url, additional_headers=headers, open_timeout=10) as socket:
        assert rows_in(socket.recv(timeout=10)) == {run.friendly_id: ("QUEUED", False)}
        transition(run.pk, RunStatus.DEQUEUED)
        assert rows_in(socket.recv(timeout=10)) == {
            run.friendly_id: ("DEQUEUED", False)
        }
    log = server.stop()
    assert "error" not in log.lower(), log
