from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import Run
from runs.statuses import RunStatus

pytestmark = pytest.mark.django_db


def row_ids(response) -> list[str]:
    return re.findall(r'<tr id="run-(run_[a-z0-9]+)"', response.content.decode())


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice)
    return client


def test_runs_list_requires_login(client, dev):
    response = client.get("/env/dev/runs/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    "query",
    ["", "?status=failed", "?tag=vip", "?tag=vip,rare&status=QUEUED", "?task=email"],
)
def test_runs_list_runs_a_constant_number_of_queries(signed_in, dev, make_run, query):
    for _ in range(3):
        make_run(dev, task="email", tags=["vip"])
    with CaptureQueriesContext(connection) as few:
        response = signed_in.get(f"/env/dev/runs/{query}")
    assert response.status_code == 200
    for _ in range(12):
        make_run(dev, task="email", tags=["vip"], parent_run_id=None)
    with CaptureQueriesContext(connection) as many:
        signed_in.get(f"/env/dev/runs/{query}")
    assert len(many) == len(few)


def test_bob_cannot_see_prod(client, bob, prod):
    client.force_login(bob)
    assert client.get("/env/prod/runs/").status_code == 404
    assert client.get("/env/dev/runs/").status_code == 200


def test_rows_show_the_columns_of_a_run(signed_in, dev, make_run):
    run = make_run(dev, task="email", tags=["vip", "org_acme"], test=True)
    Run.objects.filter(pk=run.pk).update(metadata={"progress": 0.4})
    body = signed_in.get("/env/dev/runs/").content.decode()
    row = body[body.index(f'id="run-{run.friendly_id}"') :]
    row = row[: row.index("</tr>")]
    assert f'data-copy="{run.friendly_id}"' in row
    assert "email" in row and "vip" in row and "org_acme" in row
    assert "Queued" in row  # status badge
    assert 'title="Test run"' in row
    assert 'aria-valuenow="40"' in row  # progress bar from metadata.progress
    # the row menu's items (Open, Copy, Replay, Cancel) are built by app.js when it
    # opens (tests/browser); the row says whether Cancel is offered
    assert 'class="menu row-menu" data-cancelable' in row


def test_a_finished_run_row_offers_no_cancel_and_rows_stay_small(
    signed_in, dev, make_run
):
    run = make_run(dev, task="email", tags=["vip"])
    Run.objects.filter(pk=run.pk).update(status=RunStatus.COMPLETED)
    body = signed_in.get("/env/dev/runs/").content.decode()
    row = body[body.index(f'<tr id="run-{run.friendly_id}"') :]
    row = row[: row.index("</tr>") + 5]
    assert 'class="menu row-menu"' in row and "data-cancelable" not in row
    # the live feed sends each row to every open runs list (docs/realtime.md)
    assert len(row.encode()) < 2300


def test_status_groups_and_single_statuses_filter_rows(signed_in, dev, make_run):
    queued = make_run(dev)
    failed = make_run(dev)
    crashed = make_run(dev)
    Run.objects.filter(pk=failed.pk).update(status=RunStatus.FAILED)
    Run.objects.filter(pk=crashed.pk).update(status=RunStatus.CRASHED)
    assert set(row_ids(signed_in.get("/env/dev/runs/?status=failed"))) == {
        failed.friendly_id,
        crashed.friendly_id,
    }
    assert row_ids(signed_in.get("/env/dev/runs/?status=FAILED")) == [
        failed.friendly_id
    ]
    assert row_ids(signed_in.get("/env/dev/runs/?status=queued")) == [
        queued.friendly_id
    ]
    both = row_ids(signed_in.get("/env/dev/runs/?status=QUEUED&status=CRASHED"))
    assert set(both) == {queued.friendly_id, crashed.friendly_id}


def test_filters_by_task_tag_version_queue_machine_and_batch(
    signed_in, dev, make_run, deploy
):
    email = make_run(dev, task="email", tags=["vip"], machine="large-1x")
    report = make_run(dev, task="report", tags=["rare"], queue="reports")
    other = make_run(dev, task="other")
    Run.objects.filter(pk=email.pk).update(version="20250101.1")

    def ids(query: str) -> set[str]:
        return set(row_ids(signed_in.get(f"/env/dev/runs/?{query}")))

    assert ids("task=email&task=report") == {email.friendly_id, report.friendly_id}
    assert ids("tag=vip,rare") == {email.friendly_id, report.friendly_id}
    assert ids("tag=nope") == set()
    assert ids("version=20250101.1") == {email.friendly_id}
    assert ids("queue=reports") == {report.friendly_id}
    assert ids("machine=large-1x") == {email.friendly_id}
    assert other.friendly_id in ids("")


def test_search_finds_a_run_by_id_or_idempotency_key(signed_in, dev, make_run):
    keyed = make_run(dev, idempotency_key="order-42")
    other = make_run(dev)
    assert row_ids(signed_in.get(f"/env/dev/runs/?search={other.friendly_id}")) == [
        other.friendly_id
    ]
    assert row_ids(signed_in.get("/env/dev/runs/?search=order-42")) == [
        keyed.friendly_id
    ]


def test_root_only_test_runs_and_batch_filters(signed_in, dev, make_run):
    from runs.triggering import BatchItem, batch_trigger

    parent = make_run(dev)
    child = make_run(dev, parent_run_id=parent.friendly_id)
    test_run = make_run(dev, test=True)
    batch, batch_runs, _ = batch_trigger(dev, [BatchItem("hello-world", {"i": 1})])

    def ids(query: str) -> set[str]:
        return set(row_ids(signed_in.get(f"/env/dev/runs/?{query}")))

    assert child.friendly_id not in ids("root_only=true")
    assert parent.friendly_id in ids("root_only=true")
    assert ids("is_test=true") == {test_run.friendly_id}
    assert test_run.friendly_id not in ids("is_test=false")
    assert ids(f"batch={batch.friendly_id}") == {batch_runs[0].friendly_id}
    assert ids(f"parent={parent.friendly_id}") == {child.friendly_id}


def test_created_period_and_range(signed_in, dev, make_run):
    old = make_run(dev)
    Run.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    new = make_run(dev)

    def ids(query: str) -> set[str]:
        return set(row_ids(signed_in.get(f"/env/dev/runs/?{query}")))

    assert ids("period=1d") == {new.friendly_id}
    assert ids("period=7d") == {old.friendly_id, new.friendly_id}
    start = (timezone.now() - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%S")
    end = (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    assert ids(f"from={start}&to={end}") == {old.friendly_id}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=QUEUED,NOPE", "Invalid status values: NOPE"),
        ("from=yesterday-ish", "Invalid date"),
        ("to=2025-13-45", "Invalid date"),
        ("period=7 days", "Invalid duration"),
        ("machine=huge", "Invalid machine values: huge"),
        ("from=2025-02-01&to=2025-01-01", "before its start"),
        ("after=not-a-cursor!", "Invalid cursor"),
        ("tag=a%00b", "Null characters are not allowed"),
        ("task=%00", "Null characters are not allowed"),
        ("search=%00", "Null characters are not allowed"),
        ("from=99999999999999999999", "Invalid date"),
        ("before=eyJjIjoiYSJ9", "Invalid cursor"),
        ("size=33", "Runs per page: must be 25, 50 or 100, got &#x27;33&#x27;"),
        ("size=x", "Runs per page: must be 25, 50 or 100"),
        ("is_test=yes", "Test runs: Must be true or false, got &#x27;yes&#x27;"),
        ("root_only=maybe", "Root runs only: Must be true or false"),
    ],
)
def test_bad_filter_input_is_a_message_in_the_page(signed_in, dev, query, message):
    response = signed_in.get(f"/env/dev/runs/?{query}")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'role="alert"' in body
    assert message in body


def test_an_htmx_request_gets_only_the_table(signed_in, dev, make_run):
    run = make_run(dev)
    response = signed_in.get("/env/dev/runs/?status=queued", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="runs-table"')
    assert 'data-resync-url="/env/dev/runs/?status=queued"' in body
    assert '<tbody id="runs-body">' in body
    assert f'id="run-{run.friendly_id}"' in body
    assert "<html" not in body
    restore = signed_in.get(
        "/env/dev/runs/",
        HTTP_HX_REQUEST="true",
        HTTP_HX_HISTORY_RESTORE_REQUEST="true",
    )
    assert "<html" in restore.content.decode()


def test_an_htmx_answer_updates_the_filter_buttons_out_of_band(signed_in, dev):
    response = signed_in.get(
        "/env/dev/runs/?status=failed&status=COMPLETED&task=a&from=2026-01-01T10:00"
        "&queue=q",
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    for button in ("status", "task", "period", "more"):
        assert f'<summary id="filter-{button}"' in body
    status = body[body.index('id="filter-status"') :]
    assert 'hx-swap-oob="true"' in status[: status.index(">")]
    assert '<span class="count">2</span>' in status[: status.index("</summary>")]
    period = body[body.index('id="filter-period"') :]
    assert "Custom range" in period[: period.index("</summary>")]
    full = signed_in.get("/env/dev/runs/?status=failed").content.decode()
    assert full.count('id="filter-status"') == 1
    assert "hx-swap-oob" not in full[full.index('id="filter-status"') :][:200]


def test_the_page_keeps_the_hooks_other_features_build_on(signed_in, dev, make_run):
    make_run(dev)
    body = signed_in.get("/env/dev/runs/").content.decode()
    assert 'class="actions" id="runs-actions"' in body
    assert 'id="run-filters"' in body and 'hx-push-url="true"' in body
    assert 'form="bulk-selection"' in body and 'hx-preserve="true"' in body
    assert 'id="env-counters"' in body
    assert 'ws-connect="/ws/env/dev/runs/"' in body


def test_keyset_pages_forward_and_back(signed_in, dev, make_run):
    runs = [make_run(dev) for _ in range(30)]
    newest_first = [r.friendly_id for r in reversed(runs)]
    first = signed_in.get("/env/dev/runs/")
    assert row_ids(first) == newest_first[:25]
    older = re.search(
        r'class="btn btn-small pager-next" rel="next" href="\?([^"]+)"',
        first.content.decode(),
    )
    second = signed_in.get(f"/env/dev/runs/?{older.group(1).replace('&amp;', '&')}")
    assert row_ids(second) == newest_first[25:]
    assert "pager-next" not in second.content.decode()
    newer = re.search(
        r'class="btn btn-small pager-previous" rel="prev" href="\?([^"]+)"',
        second.content.decode(),
    )
    back = signed_in.get(f"/env/dev/runs/?{newer.group(1).replace('&amp;', '&')}")
    assert row_ids(back) == newest_first[:25]
    assert "pager-previous" not in back.content.decode()


@pytest.mark.parametrize(("size", "rows"), [("50", 30), ("100", 30), ("", 25)])
def test_page_sizes(signed_in, dev, make_run, size, rows):
    for _ in range(30):
        make_run(dev)
    assert len(row_ids(signed_in.get(f"/env/dev/runs/?size={size}"))) == rows


def test_pager_links_keep_the_filters(signed_in, dev, make_run):
    for _ in range(30):
        make_run(dev, tags=["vip"])
    body = signed_in.get("/env/dev/runs/?tag=vip&size=25").content.decode()
    link = re.search(r'rel="next" href="\?([^"]+)"', body).group(1)
    assert "tag=vip" in link and "size=25" in link and "after=" in link


def test_applied_filters_are_chips_that_remove_themselves(signed_in, dev, make_run):
    make_run(dev, tags=["vip"])
    body = signed_in.get("/env/dev/runs/?tag=vip&status=queued").content.decode()
    assert 'data-unset="tag"' in body and 'data-unset="status"' in body
    chip = re.search(
        r'href="\?([^"]*)" class="filter-chip-remove" data-unset="tag"', body
    )
    assert chip.group(1) == "status=queued"
    assert "Clear all" in body


def test_empty_states(signed_in, dev, make_run):
    assert (
        "No runs in Development yet" in signed_in.get("/env/dev/runs/").content.decode()
    )
    make_run(dev)
    assert (
        "No runs match these filters"
        in signed_in.get("/env/dev/runs/?status=failed").content.decode()
    )


def test_filter_options_offer_the_environments_tasks(signed_in, dev, prod, deploy):
    deploy(dev, "email", "report")
    deploy(prod, "prod-only")
    body = signed_in.get("/env/dev/runs/").content.decode()
    assert 'name="task" value="email"' in body
    assert 'name="task" value="report"' in body
    assert "prod-only" not in body


def test_the_actions_area_renders_the_bulk_actions_slot(
    signed_in, dev, settings, tmp_path
):
    (tmp_path / "dashboard").mkdir()
    (tmp_path / "dashboard" / "_bulk_panel_slot.html").write_text(
        '<button id="bulk-button">Bulk action {{ environment.slug }}</button>'
    )
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]
    body = signed_in.get("/env/dev/runs/").content.decode()
    assert '<button id="bulk-button">Bulk action dev</button>' in body


def test_status_chips_use_labels(signed_in, dev):
    body = signed_in.get(
        "/env/dev/runs/?status=failed&status=TIMED_OUT"
    ).content.decode()
    assert '<span class="filter-chip-value">Any failed, Timed out</span>' in body


def test_boolean_filters_take_true_false_1_and_0(signed_in, dev, make_run):
    test_run = make_run(dev, test=True)
    for query in ("is_test=true", "is_test=1", "is_test=TRUE"):
        assert row_ids(signed_in.get(f"/env/dev/runs/?{query}")) == [
            test_run.friendly_id
        ]
    for query in ("is_test=false", "is_test=0"):
        assert row_ids(signed_in.get(f"/env/dev/runs/?{query}")) == []
