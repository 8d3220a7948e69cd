"""The dashboard's bulk actions: the panel on the runs list, the pages, permissions."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from dashboard.bulk_presenters import render_bulk_fragments
from runs import bulk
from runs.models import BulkAction, Run
from runs.statuses import RunStatus
from tests.bulk.conftest import process_all

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _preview(client, env="dev", **data):
    return client.post(f"/env/{env}/bulk-actions/preview", data, **HTMX)


def test_the_runs_list_offers_the_bulk_action_panel(signed_in, dev, runs_in):
    runs_in(dev, "QUEUED", 1)
    body = signed_in.get("/env/dev/runs/").content.decode()
    assert "data-bulk-open" in body and 'id="bulk-panel"' in body
    assert '<form id="bulk-selection"' in body
    assert "js/bulk.js" in body


def test_the_panel_counts_the_filtered_runs_on_every_page(signed_in, dev, runs_in):
    runs_in(dev, "QUEUED", 3)
    runs_in(dev, "COMPLETED", 2)
    runs_in(dev, "QUEUED", 4, task="task-b")
    response = _preview(signed_in, query="task=task-a&size=25&after=", action="cancel")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-targeted="5"' in body and 'data-eligible="3"' in body
    assert "2 have finished and will be skipped" in body
    assert "Cancel 3 runs…" in body
    assert "Task is task-a" in body  # the filter in words, for the confirmation too
    assert 'hx-confirm="This cancels the 5 runs matching: Task is task-a' in body
    assert "2 of them have finished and will be skipped" in body
    assert 'data-confirm-title="Cancel 3 runs?"' in body
    replay = _preview(signed_in, query="task=task-a", action="replay").content.decode()
    assert 'data-eligible="5"' in replay and "Replay 5 runs…" in replay
    assert 'name="version" value="current" checked' in replay


def test_the_panel_previews_the_first_runs_without_changing_anything(
    signed_in, dev, runs_in
):
    runs = runs_in(dev, "QUEUED", 12)
    body = _preview(signed_in, query="task=task-a", action="cancel").content.decode()
    assert runs[0].friendly_id in body  # oldest first
    assert runs[-1].friendly_id not in body  # only the first 10
    assert "… and 2 more" in body
    assert not BulkAction.objects.exists()
    assert Run.objects.filter(status=RunStatus.QUEUED).count() == 12


def test_the_panel_counts_a_selection(signed_in, dev, runs_in):
    runs = runs_in(dev, "QUEUED", 3)
    body = _preview(
        signed_in,
        query="task=task-a",
        runIds=[runs[0].friendly_id, runs[1].friendly_id],
        target="selection",
        action="cancel",
    ).content.decode()
    assert 'data-targeted="2"' in body
    assert "2 selected runs" in body
    as_filter = _preview(
        signed_in,
        query="task=task-a",
        runIds=[runs[0].friendly_id],
        target="filter",
        action="cancel",
    ).content.decode()
    assert 'data-targeted="3"' in as_filter


def test_the_panel_explains_what_cannot_be_done(signed_in, dev, runs_in, monkeypatch):
    bad = _preview(signed_in, query="status=NOPE", action="cancel").content.decode()
    assert "Invalid status values: NOPE" in bad and "disabled" in bad
    runs_in(dev, "QUEUED", 3)
    monkeypatch.setattr(bulk, "MAX_TARGETS", 2)
    many = _preview(signed_in, query="task=task-a", action="cancel").content.decode()
    assert "More than 2 runs match" in many
    assert "Narrow the filters" in many


def test_submitting_creates_the_bulk_action_and_goes_to_its_page(
    signed_in, alice, dev, runs_in
):
    runs_in(dev, "FAILED", 2)
    response = signed_in.post(
        "/env/dev/bulk-actions/new",
        {
            "query": "status=FAILED",
            "action": "replay",
            "name": "retry",
            "version": "original",
        },
        **HTMX,
    )
    action = BulkAction.objects.get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/env/dev/bulk-actions/{action.friendly_id}/"
    assert (action.type, action.name, action.targeted) == ("REPLAY", "retry", 2)
    assert (action.created_by, action.created_via) == (alice, "dashboard")
    assert action.use_current_version is False
    assert action.status == "PENDING"  # the work happens in the background


def test_a_failed_submit_shows_the_reason_in_the_panel(signed_in, dev):
    response = signed_in.post(
        "/env/dev/bulk-actions/new", {"query": "task=none", "action": "cancel"}, **HTMX
    )
    assert response.status_code == 200
    assert "No runs match" in response.content.decode()
    assert not BulkAction.objects.exists()


def test_actions_need_a_csrf_token(alice, dev, runs_in):
    runs_in(dev, "QUEUED", 1)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(
        "/env/dev/bulk-actions/new", {"query": "task=task-a", "action": "cancel"}
    )
    assert response.status_code == 403
    assert not BulkAction.objects.exists()


def test_anonymous_users_are_sent_to_sign_in(client, dev):
    for method, path in [
        ("get", "/env/dev/bulk-actions/"),
        ("post", "/env/dev/bulk-actions/preview"),
        ("post", "/env/dev/bulk-actions/new"),
    ]:
        response = getattr(client, method)(path)
        assert (
            response.status_code == 302 and "/accounts/login/" in response["Location"]
        )


def test_users_only_reach_environments_they_may_see(client, bob, prod, runs_in):
    run = runs_in(prod, "QUEUED", 1)[0]
    action = bulk.create_bulk_action(
        bulk.target_from_run_ids(prod, [run.friendly_id]), "cancel"
    )
    client.force_login(bob)
    assert (
        client.get(f"/env/prod/bulk-actions/{action.friendly_id}/").status_code == 404
    )
    assert client.get("/env/prod/bulk-actions/").status_code == 404
    assert _preview(client, env="prod", query="", action="cancel").status_code == 404
    assert (
        client.post(f"/env/prod/bulk-actions/{action.friendly_id}/abort").status_code
        == 404
    )
    created = client.post(
        "/env/prod/bulk-actions/new", {"runIds": [run.friendly_id], "action": "cancel"}
    )
    assert created.status_code == 404
    # bob's own environment cannot name prod's runs either
    assert (
        "not found in this environment"
        in _preview(
            client,
            env="dev",
            runIds=[run.friendly_id],
            target="selection",
            action="cancel",
        ).content.decode()
    )
    action.refresh_from_db()
    assert action.status == "PENDING"


def test_the_list_page_shows_each_bulk_action_with_constant_queries(
    signed_in, dev, runs_in
):
    runs_in(dev, "QUEUED", 2)
    first = process_all(
        bulk.create_bulk_action(
            bulk.target_from_filter(dev, {"task": "task-a"}), "cancel", name="first one"
        )
    )
    body = signed_in.get("/env/dev/bulk-actions/").content.decode()
    assert f'id="bulk-row-{first.friendly_id}"' in body
    assert (
        "first one" in body
        and "Completed" in body
        and '2<span class="muted">/2' in body
    )

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert signed_in.get("/env/dev/bulk-actions/").status_code == 200
        return len(ctx.captured_queries)

    before = queries()
    for _ in range(3):
        bulk.create_bulk_action(
            bulk.target_from_filter(dev, {"task": "task-a"}), "replay"
        )
    assert queries() == before


def test_the_page_shows_progress_the_filter_and_original_to_new_runs(
    signed_in, dev, runs_in, alice
):
    failed = runs_in(dev, "FAILED", 2)
    action = process_all(
        bulk.create_bulk_action(
            bulk.target_from_filter(dev, {"status": "FAILED", "period": "1h"}),
            "replay",
            user=alice,
        )
    )
    body = signed_in.get(
        f"/env/dev/bulk-actions/{action.friendly_id}/"
    ).content.decode()
    assert f'id="bulk-summary-{action.friendly_id}"' in body
    assert "2</b> replayed" in body and "100%" in body
    assert "Status is Failed · Created" in body
    assert "Open this filter" in body and "status=FAILED" in body
    assert ("alice" in body and "via dashboard" not in body) or "alice" in body
    for item in action.items.select_related("new_run"):
        assert item.run.friendly_id in body and item.new_run.friendly_id in body
    assert {r.friendly_id for r in failed} <= {
        i.run.friendly_id for i in action.items.all()
    }
    assert "Replay these runs again" in body
    assert 'ws-connect="/ws/env/dev/bulk-actions/' in body


def test_abort_from_the_page_and_from_the_list(signed_in, alice, dev, runs_in):
    runs_in(dev, "QUEUED", 2)
    first = bulk.create_bulk_action(
        bulk.target_from_filter(dev, {"task": "task-a"}), "cancel"
    )
    second = bulk.create_bulk_action(
        bulk.target_from_filter(dev, {"task": "task-a"}), "cancel"
    )
    page = signed_in.post(f"/env/dev/bulk-actions/{first.friendly_id}/abort", **HTMX)
    assert page.content.decode().lstrip().startswith("<section")
    assert f'id="bulk-summary-{first.friendly_id}"' in page.content.decode()
    row = signed_in.post(
        f"/env/dev/bulk-actions/{second.friendly_id}/abort",
        HTTP_HX_TARGET=f"bulk-row-{second.friendly_id}",
        **HTMX,
    )
    assert (
        row.content.decode()
        .lstrip()
        .startswith(f'<tr id="bulk-row-{second.friendly_id}"')
    )
    for action in (first, second):
        action.refresh_from_db()
        assert (action.status, action.aborted_by, action.aborted_via) == (
            "ABORTED",
            alice,
            "dashboard",
        )
    assert Run.objects.filter(status=RunStatus.QUEUED).count() == 2


def test_replay_these_runs_again(signed_in, dev, runs_in):
    runs_in(dev, "QUEUED", 2)
    canceled = process_all(
        bulk.create_bulk_action(
            bulk.target_from_filter(dev, {"task": "task-a"}), "cancel"
        )
    )
    body = signed_in.get(
        f"/env/dev/bulk-actions/{canceled.friendly_id}/"
    ).content.decode()
    assert "Replay 2 runs" in body
    response = signed_in.post(
        f"/env/dev/bulk-actions/{canceled.friendly_id}/replay",
        {"name": "undo", "version": "current"},
        **HTMX,
    )
    again = BulkAction.objects.exclude(pk=canceled.pk).get()
    assert response["HX-Redirect"] == f"/env/dev/bulk-actions/{again.friendly_id}/"
    assert (again.type, again.name, again.targeted) == ("REPLAY", "undo", 2)
    assert again.params == {"bulkAction": canceled.friendly_id}


def test_the_live_fragments_are_out_of_band_swaps_that_name_the_bulk_action(
    dev, runs_in, alice
):
    runs_in(dev, "QUEUED", 1)
    action = bulk.create_bulk_action(
        bulk.target_from_filter(dev, {"task": "task-a"}), "cancel", user=alice
    )
    html = render_bulk_fragments(action)
    assert f'<section id="bulk-summary-{action.friendly_id}"' in html
    assert f'hx-swap-oob="outerHTML:#bulk-row-{action.friendly_id}"' in html
    assert (
        f'<tbody id="bulk-items-latest-{action.friendly_id}" hx-swap-oob="outerHTML"'
        in html
    )
    assert "csrfmiddlewaretoken" not in html
    assert '0</b> of <b class="mono">1</b>' in html
    process_all(action)
    assert "1</b> canceled" in render_bulk_fragments(action)


def test_the_summary_and_items_resync_on_their_own(signed_in, dev, runs_in):
    runs_in(dev, "QUEUED", 1)
    action = process_all(
        bulk.create_bulk_action(
            bulk.target_from_filter(dev, {"task": "task-a"}), "cancel"
        )
    )
    summary = signed_in.get(
        f"/env/dev/bulk-actions/{action.friendly_id}/?part=summary", **HTMX
    )
    assert (
        summary.content.decode()
        .lstrip()
        .startswith(f'<section id="bulk-summary-{action.friendly_id}"')
    )
    items = signed_in.get(
        f"/env/dev/bulk-actions/{action.friendly_id}/?part=items", **HTMX
    )
    assert items.content.decode().lstrip().startswith('<section id="bulk-items"')
    bad = signed_in.get(f"/env/dev/bulk-actions/{action.friendly_id}/?after=garbage")
    assert bad.status_code == 200 and "Invalid cursor" in bad.content.decode()


def test_the_bulk_action_page_has_constant_queries(signed_in, dev, runs_in):
    def queries(count: int, task: str) -> int:
        runs_in(dev, "FAILED", count, task=task)
        action = process_all(
            bulk.create_bulk_action(
                bulk.target_from_filter(dev, {"task": task}), "replay"
            )
        )
        with CaptureQueriesContext(connection) as ctx:
            response = signed_in.get(f"/env/dev/bulk-actions/{action.friendly_id}/")
        assert response.status_code == 200
        return len(ctx.captured_queries)

    assert queries(2, "task-few") == queries(20, "task-many")


def test_view_runs_lists_the_runs_a_bulk_action_touched(signed_in, dev, runs_in):
    touched = runs_in(dev, "QUEUED", 2)
    other = runs_in(dev, "QUEUED", 1, task="task-b")[0]
    action = process_all(
        bulk.create_bulk_action(
            bulk.target_from_filter(dev, {"task": "task-a"}), "cancel"
        )
    )
    body = signed_in.get(
        f"/env/dev/runs/?bulk_action={action.friendly_id}&period=all"
    ).content.decode()
    for run in touched:
        assert f'id="run-{run.friendly_id}"' in body
    assert f'id="run-{other.friendly_id}"' not in body
