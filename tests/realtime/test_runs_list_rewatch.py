"""A runs list that swaps its table (other filters, another page) gets a new snapshot;
until then the hub sends it nothing about rows (their targets are not on the page).
The pager's "N runs on this page" follows the rows the feed inserts."""

from __future__ import annotations

import asyncio

import pytest
from django.http import QueryDict

from realtime.feed import FeedBatch
from realtime.fragments import RowCache
from realtime.hub import Connection, CycleResult, Hub
from realtime.watches import RunsListWatch
from runs.filter_match import load_runs_for_matching

pytestmark = pytest.mark.django_db

LIST = "/env/dev/runs/"


@pytest.fixture
def hub():
    loop = asyncio.new_event_loop()
    yield Hub(loop)
    loop.close()


def listing(hub: Hub, dev, query: str) -> Connection:
    """A connection to a runs list whose first snapshot is installed (and sent)."""
    conn = Connection(sender=None, watch=RunsListWatch(dev, LIST, QueryDict(query)))
    hub.connections.add(conn)
    hub._index_list(conn)
    state, fragments = conn.watch.snapshot(RowCache())
    hub._dispatch(
        CycleResult(
            batch=FeedBatch(), snapshots=[(conn, conn.generation, state, fragments)]
        )
    )
    assert conn.coalescer.take(now=1e9) is not None
    return conn


def changed(hub: Hub, conn: Connection, *runs) -> dict:
    """What the hub offers `conn` when these runs changed (and match its filters)."""
    loaded = {r.pk: r for r in load_runs_for_matching([r.pk for r in runs])}
    rows = RowCache()
    hub._dispatch(
        CycleResult(
            batch=FeedBatch(),
            runs=loaded,
            matches={(conn.watch.key, pk): True for pk in loaded},
            rows={pk: rows.row(run) for pk, run in loaded.items()},
        )
    )
    fragments = conn.coalescer.take(now=2e9) or []
    return {f.placement or f.html[:20]: f.html for f in fragments}


def test_an_inserted_run_updates_the_count_of_runs_on_the_page(hub, dev, make_run):
    make_run(dev)
    conn = listing(hub, dev, "status=QUEUED")
    fresh = make_run(dev)
    offered = changed(hub, conn, fresh)
    assert any(p.startswith("beforebegin:#run-") for p in offered)
    assert any("2 runs on this page" in html for html in offered.values())


def test_a_snapshot_carries_the_count(dev, make_run):
    make_run(dev)
    watch = RunsListWatch(dev, LIST, QueryDict(""))
    _, fragments = watch.snapshot(RowCache())
    count = dict(fragments)["runs-count"].html
    assert count.startswith('<span id="runs-count"') and "1 run on this page" in count


def test_after_a_rewatch_nothing_about_rows_is_sent_until_the_snapshot(
    hub, dev, make_run
):
    shown = make_run(dev)
    conn = listing(hub, dev, "status=QUEUED")
    # an update of a shown row is pending when the page swaps its table
    hub._dispatch(
        CycleResult(
            batch=FeedBatch(),
            runs={shown.pk: load_runs_for_matching([shown.pk]).get()},
            rows={shown.pk: "<tr></tr>"},
        )
    )
    assert len(conn.coalescer) == 1
    hub.rewatch(conn, LIST, QueryDict("status=QUEUED&size=50"))
    assert len(conn.coalescer) == 0
    # a matching run before the new snapshot: not inserted into a page the hub does
    # not know yet (the snapshot will show it)
    assert changed(hub, conn, make_run(dev)) == {}
    assert conn.needs_snapshot


@pytest.mark.parametrize("query", ["size=33", "is_test=maybe"])
def test_a_list_with_bad_input_shows_the_error_and_nothing_live(dev, make_run, query):
    make_run(dev)
    watch = RunsListWatch(dev, LIST, QueryDict(query))
    assert watch.matcher is None
    assert watch.snapshot(RowCache()) == (watch.state, [])


@pytest.mark.parametrize(
    ("query", "says"),
    [("", "No runs in Development yet"), ("status=FAILED", "No runs match")],
)
def test_an_empty_snapshot_has_the_page_own_empty_state(
    client, alice, dev, query, says
):
    client.force_login(alice)
    page = client.get(f"{LIST}?{query}").content.decode()
    _, fragments = RunsListWatch(dev, LIST, QueryDict(query)).snapshot(RowCache())
    body = dict(fragments)["runs-body"].html
    assert says in body
    start = page.index('<tr class="empty" id="runs-empty">')
    assert page[start : page.index("</tr>", start)] in body
