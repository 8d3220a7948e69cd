from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError
from django.test import override_settings

from realtime import hub as hub_module
from runs.lifecycle import transition
from runs.statuses import RunStatus
from tests.realtime.conftest import rows_in
from tests.realtime.test_runs_list_live import receive_until

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_feed_reports_down_while_its_database_is_unreachable_and_catches_up(
    connect, alice, dev, make_run, monkeypatch
):
    run = await sync_to_async(make_run)(dev)
    communicator = await connect(alice, "/ws/env/dev/runs/")
    await communicator.receive_from(timeout=5)

    real_cycle = hub_module.run_cycle
    outage = {"on": True}

    def flaky_cycle(*args, **kwargs):
        if outage["on"]:
            raise OperationalError("connection to server was lost")
        return real_cycle(*args, **kwargs)

    monkeypatch.setattr(hub_module, "run_cycle", flaky_cycle)
    monkeypatch.setattr(hub_module, "RETRY_SECONDS", (0.05,))
    await sync_to_async(transition)(run.pk, RunStatus.DEQUEUED)  # during the outage
    messages = await receive_until(communicator, lambda m: 'data-state="down"' in m)
    assert rows_in(messages[-1]) == {}

    outage["on"] = False  # the database is back: the missed change arrives
    messages = await receive_until(communicator, lambda m: rows_in(m))
    assert rows_in(messages[-1]) == {run.friendly_id: ("DEQUEUED", False)}
    assert 'data-state="open"' in messages[-1]


@override_settings(
    CHANNEL_LAYERS={
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:9/0"]},  # nothing listens there
        }
    }
)
async def test_the_live_feed_does_not_need_redis(connect, alice, dev, make_run):
    run = await sync_to_async(make_run)(dev)
    communicator = await connect(alice, "/ws/env/dev/runs/")
    await communicator.receive_from(timeout=5)
    await sync_to_async(transition)(run.pk, RunStatus.DEQUEUED)
    message = await communicator.receive_from(timeout=5)
    assert rows_in(message) == {run.friendly_id: ("DEQUEUED", False)}
