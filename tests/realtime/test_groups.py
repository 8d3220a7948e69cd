"""Tabs showing the same page in the same state share one group: one watch, one
outbox, one message per flush tick; each tab still gets its own flow control."""

from __future__ import annotations

import json
import re

import pytest
from asgiref.sync import sync_to_async

from realtime.hub import Hub
from runs.lifecycle import transition
from runs.statuses import RunStatus
from tests.realtime.conftest import rows_in

pytestmark = pytest.mark.django_db(transaction=True)

SEQ = re.compile(r'data-seq="(\d+)"')


def groups_of(hub: Hub) -> list[int]:
    return sorted(len(g.members) for g in hub.groups.all)


async def test_tabs_on_the_same_list_share_one_group_and_one_message(
    connect, alice, dev, make_run
):
    run = await sync_to_async(make_run)(dev)
    tabs = [await connect(alice, "/ws/env/dev/runs/") for _ in range(3)]
    for tab in tabs:
        assert rows_in(await tab.receive_from(timeout=5)) == {
            run.friendly_id: ("QUEUED", False)
        }
    hub = Hub.current()
    assert groups_of(hub) == [3]

    built = hub.frames_built
    await sync_to_async(transition)(run.pk, RunStatus.DEQUEUED)
    messages = [await tab.receive_from(timeout=5) for tab in tabs]
    assert rows_in(messages[0]) == {run.friendly_id: ("DEQUEUED", False)}
    assert messages[1] == messages[0] == messages[2]
    assert hub.frames_built == built + 1  # assembled once for the three tabs


async def test_a_tab_opened_after_the_list_grew_starts_its_own_group(
    connect, alice, dev, make_run
):
    first = await sync_to_async(make_run)(dev)
    early = await connect(alice, "/ws/env/dev/runs/")
    await early.receive_from(timeout=5)
    second = await sync_to_async(make_run)(dev)  # inserted at the top of the open page
    assert rows_in(await early.receive_from(timeout=5)) == {
        second.friendly_id: ("QUEUED", False)
    }

    late = await connect(alice, "/ws/env/dev/runs/")
    snapshot = await late.receive_from(timeout=5)
    assert snapshot.startswith('<tbody id="runs-body">')
    assert set(rows_in(snapshot)) == {first.friendly_id, second.friendly_id}
    assert groups_of(Hub.current()) == [1, 1]  # the early tab's page has an insertion

    await sync_to_async(transition)(first.pk, RunStatus.DEQUEUED)
    for tab in (early, late):
        assert rows_in(await tab.receive_from(timeout=5)) == {
            first.friendly_id: ("DEQUEUED", False)
        }


async def test_a_tab_behind_on_acknowledgements_gets_only_the_latest_state(
    connect, alice, dev, make_run
):
    run = await sync_to_async(make_run)(dev)
    slow, fast = [await connect(alice, "/ws/env/dev/runs/") for _ in range(2)]
    snapshot = await slow.receive_from(timeout=5)
    await fast.receive_from(timeout=5)
    for conn in Hub.current().connections:
        conn.reader.max_in_flight = 2
    await slow.send_to(json.dumps({"ack": int(SEQ.search(snapshot)[1])}))

    steps = [RunStatus.DEQUEUED, RunStatus.EXECUTING, RunStatus.WAITING]
    steps += [RunStatus.EXECUTING, RunStatus.WAITING]
    for status in steps:  # one flush tick each: the fast tab gets every state
        await sync_to_async(transition)(run.pk, status)
        message = await fast.receive_from(timeout=5)
        assert rows_in(message) == {run.friendly_id: (status, False)}
    received = [await slow.receive_from(timeout=5) for _ in range(2)]
    assert [rows_in(m)[run.friendly_id][0] for m in received] == steps[:2]
    assert await slow.receive_nothing(timeout=0.3)  # two unacknowledged: held back

    await slow.send_to(json.dumps({"ack": int(SEQ.search(received[-1])[1])}))
    caught_up = await slow.receive_from(timeout=5)
    assert rows_in(caught_up) == {run.friendly_id: ("WAITING", False)}
    assert groups_of(Hub.current()) == [2]


async def test_a_tab_too_far_behind_gets_a_fresh_snapshot_instead_of_a_backlog(
    connect, alice, dev, make_run
):
    runs = [await sync_to_async(make_run)(dev) for _ in range(4)]
    slow, fast = [await connect(alice, "/ws/env/dev/runs/") for _ in range(2)]
    snapshot = await slow.receive_from(timeout=5)
    await fast.receive_from(timeout=5)
    hub = Hub.current()
    for conn in hub.connections:
        conn.reader.max_in_flight = 1
    (group,) = hub.groups.all
    group.outbox.max_pending = 2
    await slow.send_to(json.dumps({"ack": int(SEQ.search(snapshot)[1])}))

    for run in runs:  # the slow tab takes the first change, then waits for an ack
        await sync_to_async(transition)(run.pk, RunStatus.DEQUEUED)
        await fast.receive_from(timeout=5)
    first = await slow.receive_from(timeout=5)
    assert set(rows_in(first)) == {runs[0].friendly_id}
    assert await slow.receive_nothing(timeout=0.3)

    await slow.send_to(json.dumps({"ack": int(SEQ.search(first)[1])}))
    fresh = await slow.receive_from(timeout=5)
    assert fresh.startswith('<tbody id="runs-body">')  # a snapshot, not three rows
    assert set(rows_in(fresh).values()) == {("DEQUEUED", False)}
    assert len(rows_in(fresh)) == 4


async def test_messages_say_which_watch_change_they_answer(
    connect, alice, dev, make_run
):
    await sync_to_async(make_run)(dev)
    tab = await connect(alice, "/ws/env/dev/runs/")
    assert 'data-watch="0"' in await tab.receive_from(timeout=5)
    await tab.send_to(json.dumps({"watch": "/env/dev/runs/?status=FAILED", "n": 1}))
    snapshot = await tab.receive_from(timeout=5)
    assert 'id="runs-empty"' in snapshot and 'data-watch="1"' in snapshot
