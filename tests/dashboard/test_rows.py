"""The run row partial: one partial for the page and the live feed, values computed
and escaped by dashboard.rows."""

from __future__ import annotations

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.rows import ROW, render_run_row, render_run_rows, row_values
from runs.models import Run
from runs.statuses import RunStatus
from runs.triggering import BatchItem, batch_trigger

pytestmark = pytest.mark.django_db


def rows(*runs: Run) -> list[Run]:
    return list(
        Run.objects.filter(pk__in=[r.pk for r in runs])
        .with_row_columns()
        .order_by("-created_at", "-id")
    )


def row_of(html: str, run: Run) -> str:
    start = html.index(f'<tr id="run-{run.friendly_id}"')
    return html[start : html.index("</tr>", start) + 5]


def test_links_are_the_urls_of_the_run_and_its_batch(dev, deploy):
    deploy(dev, "email")
    batch_trigger(dev, [BatchItem("email", {"n": 1})])
    (run,) = rows(*Run.objects.filter(environment=dev))
    html = render_run_row(run)
    assert f'href="{reverse("dashboard:run", args=["dev", run.friendly_id])}"' in html
    batch_url = reverse("dashboard:batch", args=["dev", run.batch.friendly_id])
    assert f'href="{batch_url}"' in html


def test_values_are_escaped_once(dev, make_run):
    run = make_run(dev, task="a<b>", tags=["o'k<&>"])
    Run.objects.filter(pk=run.pk).update(version="1<2>")
    html = render_run_row(rows(run)[0])
    assert "a&lt;b&gt;" in html and "a<b>" not in html
    assert "o&#x27;k&lt;&amp;&gt;" in html and "&amp;lt;" not in html
    assert "1&lt;2&gt;" in html


def test_cells_follow_the_run_state(dev, make_run):
    delayed = make_run(dev, delay="1h")
    running = make_run(dev, metadata={"progress": 0.996})
    done = make_run(dev, test=True, metadata={"progress": 1})
    started = timezone.now() - timedelta(minutes=2)
    Run.objects.filter(pk=running.pk).update(
        status=RunStatus.EXECUTING, started_at=started, depth=1
    )
    Run.objects.filter(pk=done.pk).update(
        status=RunStatus.COMPLETED,
        started_at=started,
        finished_at=started + timedelta(seconds=75),
        duration_ms=0,
    )
    html = render_run_rows(rows(delayed, running, done))
    delayed_row, running_row, done_row = (
        row_of(html, r) for r in (delayed, running, done)
    )
    assert 'title="Delayed until ' in delayed_row and "data-cancelable" in delayed_row
    assert f'data-live-duration="{started.isoformat()}"' in running_row
    assert 'title="Child run (depth 1)"' in running_row
    # 99.6 % shows as 100 % but is not done; 1.0 is
    assert 'aria-valuenow="100"' in running_row and "is-done" not in running_row
    assert "progress-bar is-done" in done_row and 'title="Test run"' in done_row
    assert ">1m 15s</td>" in done_row and "data-cancelable" not in done_row


def test_the_page_and_the_live_feed_render_the_same_row(client, alice, dev, make_run):
    runs = [make_run(dev, tags=["vip"]) for _ in range(3)]
    client.force_login(alice)
    now = timezone.now()
    with mock.patch("django.utils.timezone.now", return_value=now):
        page = client.get("/env/dev/runs/").content.decode()
        pushed = [render_run_row(run) for run in rows(*runs)]
    for html in pushed:
        run_id = re.search(r'<tr id="run-([^"]+)"', html).group(1)
        assert row_of(page, Run(friendly_id=run_id)) == html.strip()
    assert render_run_rows(rows(*runs)).count("<tr ") == 3


def test_prerendered_rows_are_what_the_engine_renders(dev, deploy, make_run):
    """Rows are filled into pieces rendered once per shape of their values: the same
    HTML as the engine's for every shape here (delayed, running with progress, done,
    test, child, in a batch, stale, unsafe text)."""
    deploy(dev, "email")
    batch_trigger(dev, [BatchItem("email", {"n": 1})])
    make_run(dev, delay="1h", tags=["a<b>"])
    running = make_run(dev, task="x&y", metadata={"progress": 0.5})
    done = make_run(dev, test=True)
    started = timezone.now() - timedelta(minutes=1)
    Run.objects.filter(pk=running.pk).update(
        status=RunStatus.EXECUTING, started_at=started, depth=2, version="v<1>"
    )
    Run.objects.filter(pk=done.pk).update(
        status=RunStatus.COMPLETED, started_at=started, finished_at=timezone.now()
    )
    shown = rows(*Run.objects.filter(environment=dev))
    assert len(shown) == 4
    for run in shown:
        for stale in (False, True):
            values = row_values(run, stale=stale)
            assert ROW.render(values) == ROW.engine_render(values)
