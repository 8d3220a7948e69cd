from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from dashboard.presenters import (
    env_counters,
    render_batch_fragments,
    render_deployments_rows,
    render_env_counters,
)
from runs.models import Batch, Environment, Run
from runs.querysets import COUNTER_CAP
from runs.statuses import RunStatus
from runs.triggering import BatchItem, batch_trigger

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice)
    return client


def make_batch(env, size: int = 3) -> tuple[Batch, list[Run]]:
    batch, runs, _ = batch_trigger(
        env, [BatchItem("hello-world", {"i": i}) for i in range(size)]
    )
    return batch, runs


# --- batches -----------------------------------------------------------------------


def test_batches_list_shows_progress_by_status(signed_in, dev, deploy):
    deploy(dev, "hello-world")
    batch, runs = make_batch(dev, 4)
    Run.objects.filter(pk=runs[0].pk).update(status=RunStatus.COMPLETED)
    Run.objects.filter(pk=runs[1].pk).update(status=RunStatus.FAILED)
    body = signed_in.get("/env/dev/batches/").content.decode()
    row = body[body.index(f'id="batch-{batch.friendly_id}"') :]
    row = row[: row.index("</tr>")]
    assert "In progress" in row
    assert ">4<" in row  # runs
    assert 'title="1 completed"' in row and 'title="1 failed"' in row
    assert 'title="2 queued"' in row
    assert "2/4" in row  # finished of expected


def test_batches_list_filters_and_pages(signed_in, dev, deploy):
    deploy(dev, "hello-world")
    batches = [make_batch(dev, 1)[0] for _ in range(27)]
    Batch.objects.filter(pk=batches[0].pk).update(status="COMPLETED")
    first = signed_in.get("/env/dev/batches/").content.decode()
    assert first.count('<tr id="batch-') == 25
    older = re.search(r'rel="next" href="\?([^"]+)"', first).group(1)
    second = signed_in.get(f"/env/dev/batches/?{older.replace('&amp;', '&')}")
    assert second.content.decode().count('<tr id="batch-') == 2
    done = signed_in.get("/env/dev/batches/?status=COMPLETED").content.decode()
    assert re.findall(r'<tr id="batch-(batch_[a-z0-9]+)"', done) == [
        batches[0].friendly_id
    ]
    found = signed_in.get(f"/env/dev/batches/?search={batches[3].friendly_id}")
    assert found.content.decode().count('<tr id="batch-') == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=NOPE", "Invalid status values: NOPE"),
        ("after=zzz", "Invalid cursor"),
        ("period=soon", "Invalid duration"),
    ],
)
def test_batches_list_bad_input_is_a_message(signed_in, dev, query, message):
    response = signed_in.get(f"/env/dev/batches/?{query}")
    assert response.status_code == 200
    assert message in response.content.decode()


def test_batches_filter_change_updates_the_status_button(signed_in, dev):
    body = signed_in.get(
        "/env/dev/batches/?status=PENDING&status=ABORTED", HTTP_HX_REQUEST="true"
    ).content.decode()
    button = body[body.index('<summary id="batch-filter-status"') :]
    button = button[: button.index("</summary>")]
    assert 'hx-swap-oob="true"' in button and '<span class="count">2</span>' in button
    full = signed_in.get("/env/dev/batches/?status=PENDING").content.decode()
    assert full.count('id="batch-filter-status"') == 1


def test_batches_list_queries_do_not_grow_with_the_page(signed_in, dev, deploy):
    deploy(dev, "hello-world")
    make_batch(dev, 2)
    with CaptureQueriesContext(connection) as few:
        signed_in.get("/env/dev/batches/")
    for _ in range(6):
        make_batch(dev, 3)
    with CaptureQueriesContext(connection) as many:
        signed_in.get("/env/dev/batches/")
    assert len(many) == len(few)


def test_batch_page_shows_the_summary_and_only_its_runs(
    signed_in, dev, make_run, deploy
):
    deploy(dev, "hello-world")
    batch, runs = make_batch(dev, 3)
    outsider = make_run(dev)
    body = signed_in.get(f"/env/dev/batches/{batch.friendly_id}/").content.decode()
    assert 'id="batch-summary"' in body
    for run in runs:
        assert f'id="run-{run.friendly_id}"' in body
    assert outsider.friendly_id not in body
    assert 'data-resync-url="/env/dev/batches/' in body
    partial = signed_in.get(
        f"/env/dev/batches/{batch.friendly_id}/?status=COMPLETED",
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert partial.lstrip().startswith('<div id="runs-table"')
    assert "No runs match these filters" in partial


def test_batch_page_is_scoped_to_the_environment(signed_in, dev, prod, deploy):
    deploy(prod, "hello-world")
    batch, _ = make_batch(prod, 1)
    assert signed_in.get(f"/env/dev/batches/{batch.friendly_id}/").status_code == 404


def test_batch_fragments_for_the_live_feed(dev, deploy):
    deploy(dev, "hello-world")
    batch, runs = make_batch(dev, 2)
    Run.objects.filter(pk=runs[0].pk).update(status=RunStatus.COMPLETED)
    html = render_batch_fragments(Batch.objects.get(pk=batch.pk))
    assert html.lstrip().startswith('<section id="batch-summary"')
    assert 'hx-swap-oob="true"' in html
    assert "Completed <b>1</b>" in html and "Queued <b>1</b>" in html


# --- deployments and tasks ------------------------------------------------------------


def test_deployments_list_and_page(signed_in, dev, deploy):
    first = deploy(dev, "task-a")
    second = deploy(dev, "task-a", "task-b")
    body = signed_in.get("/env/dev/deployments/").content.decode()
    assert body.index(second.version) < body.index(first.version)
    current = body[body.index(f'id="deployment-{second.pk}"') :]
    assert "Current" in current[: current.index("</tr>")]
    page = signed_in.get(f"/env/dev/deployments/{second.version}/").content.decode()
    assert "task-a" in page and "task-b" in page
    assert f"version={second.version}" in page  # link to its runs
    assert "3×" in page  # retry attempts
    assert signed_in.get("/env/dev/deployments/19990101.1/").status_code == 404


def test_deployments_rows_for_the_live_feed(dev, deploy):
    deployment = deploy(dev, "task-a")
    html = render_deployments_rows(dev)
    assert html.lstrip().startswith('<tbody id="deployments-body" hx-swap-oob="true"')
    assert deployment.version in html


def test_tasks_page_counts_runs_of_the_last_day_by_status(
    signed_in, dev, make_run, deploy
):
    from datetime import timedelta

    from django.utils import timezone

    deploy(dev, "email", "report")
    done = make_run(dev, task="email")
    make_run(dev, task="email")
    old = make_run(dev, task="email")
    Run.objects.filter(pk=done.pk).update(status=RunStatus.COMPLETED)
    Run.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    body = signed_in.get("/env/dev/tasks/").content.decode()
    row = body[body.index('id="task-email"') :]
    row = row[: row.index("</tr>")]
    assert "Completed <b>1</b>" in row and "Queued <b>1</b>" in row
    assert ">2</a>" in row  # runs in 24 h
    assert "/env/dev/test/tasks/email/" in row
    assert "task=email&amp;status=COMPLETED&amp;period=1d" in row
    report = body[body.index('id="task-report"') :]
    assert "No runs" in report[: report.index("</tr>")]


def test_tasks_page_without_a_deployment(signed_in, dev):
    assert "No tasks deployed" in signed_in.get("/env/dev/tasks/").content.decode()


# --- API keys --------------------------------------------------------------------------


def test_api_keys_are_masked_until_revealed(signed_in, dev):
    body = signed_in.get("/env/dev/apikeys/").content.decode()
    assert dev.api_key not in body
    assert dev.api_key[-4:] in body and "••••" in body
    revealed = signed_in.get("/env/dev/apikeys/reveal", HTTP_HX_REQUEST="true")
    assert dev.api_key in revealed.content.decode()
    assert "no-store" in revealed["Cache-Control"]
    raw = signed_in.get("/env/dev/apikeys/reveal?raw=1")
    assert raw.content.decode() == dev.api_key


def test_regenerating_a_key_replaces_it_at_once(signed_in, dev):
    old = dev.api_key
    response = signed_in.post("/env/dev/apikeys/regenerate", HTTP_HX_REQUEST="true")
    dev.refresh_from_db()
    assert dev.api_key != old and dev.api_key.startswith("tr_dev_")
    assert dev.api_key in response.content.decode()
    assert not Environment.objects.filter(api_key=old).exists()


def test_api_key_actions_need_access_post_and_csrf(client, bob, dev, prod):
    client.force_login(bob)
    assert client.get("/env/prod/apikeys/reveal?raw=1").status_code == 404
    assert client.post("/env/prod/apikeys/regenerate").status_code == 404
    body = client.get("/env/dev/apikeys/").content.decode()
    assert "tr_prod_" not in body  # bob only sees dev's card
    assert client.get("/env/dev/apikeys/regenerate").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(bob)
    old = dev.api_key
    assert strict.post("/env/dev/apikeys/regenerate").status_code == 403
    dev.refresh_from_db()
    assert dev.api_key == old


# --- header counters -------------------------------------------------------------------


def test_env_counters_count_executing_and_queued_runs(signed_in, dev, prod, make_run):
    for _ in range(3):
        make_run(dev)
    executing = make_run(dev)
    Run.objects.filter(pk=executing.pk).update(status=RunStatus.EXECUTING)
    make_run(dev, delay="1h")
    make_run(prod)
    html = render_env_counters(dev)
    assert html.lstrip().startswith('<div id="env-counters"')
    assert "<b>1</b> executing" in html and "<b>4</b> queued" in html
    assert "status=running" in html and "status=queued" in html
    page = signed_in.get("/env/dev/tasks/").content.decode()
    assert "<b>4</b> queued" in page


def test_env_counters_stop_counting_at_the_cap(dev, make_run):
    for _ in range(3):
        make_run(dev)
    assert env_counters(dev, cap=2)["queued_text"] == "2+"
    assert env_counters(dev)["queued_text"] == "3"
    assert COUNTER_CAP == 10_000
