"""What a runs list's live feed sends besides rows: the pager's "N runs on this page",
the page's own empty state, and nothing at all for a page showing bad input."""

from __future__ import annotations

import pytest
from django.http import QueryDict

from realtime.coalesce import Outbox
from realtime.fragments import RowCache
from realtime.watches import RunsListWatch
from runs.filter_match import load_runs_for_matching

pytestmark = pytest.mark.django_db

LIST = "/env/dev/runs/"


def watching(dev, query: str) -> tuple[RunsListWatch, dict]:
    """A runs list's watch with its snapshot installed, and the snapshot's fragments."""
    watch = RunsListWatch(dev, LIST, QueryDict(query))
    state, fragments = watch.snapshot(RowCache())
    watch.install(state)
    return watch, dict(fragments)


def test_a_snapshot_carries_the_count(dev, make_run):
    make_run(dev)
    _, fragments = watching(dev, "")
    count = fragments["runs-count"].html
    assert count.startswith('<span id="runs-count"') and "1 run on this page" in count


def test_an_inserted_run_updates_the_count_of_runs_on_the_page(dev, make_run):
    make_run(dev)
    watch, _ = watching(dev, "status=QUEUED")
    fresh = load_runs_for_matching([make_run(dev).pk]).get()
    outbox = Outbox()
    assert watch.on_matching_run(fresh, RowCache().row(fresh), outbox)
    offered = {f.placement or f.html[:20]: f.html for f in outbox.since(0)}
    assert any(p.startswith("beforebegin:#run-") for p in offered)
    assert any("2 runs on this page" in html for html in offered.values())


@pytest.mark.parametrize("query", ["size=33", "is_test=maybe"])
def test_a_list_with_bad_input_shows_the_error_and_nothing_live(dev, make_run, query):
    make_run(dev)
    watch = RunsListWatch(dev, LIST, QueryDict(query))
    assert watch.matcher is None
    assert watch.snapshot(RowCache())[1] == []


@pytest.mark.parametrize(
    ("query", "says"),
    [("", "No runs in Development yet"), ("status=FAILED", "No runs match")],
)
def test_an_empty_snapshot_has_the_page_own_empty_state(
    client, alice, dev, query, says
):
    client.force_login(alice)
    page = client.get(f"{LIST}?{query}").content.decode()
    _, fragments = watching(dev, query)
    body = fragments["runs-body"].html
    assert says in body
    start = page.index('<tr class="empty" id="runs-empty">')
    assert page[start : page.index("</tr>", start)] in body
