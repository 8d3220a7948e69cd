from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard.presenters import (
    render_run_event_rows,
    render_run_fragments,
    run_page_context,
)
from runs.lifecycle import record_event
from runs.models import Attempt, AttemptStatus, Run, RunEvent, RunEventKind
from runs.statuses import RunStatus
from runs.triggering import ReplayOverrides, replay

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice)
    return client


def page(client, run) -> str:
    response = client.get(f"/env/{run.environment.slug}/runs/{run.friendly_id}/")
    assert response.status_code == 200
    return response.content.decode()


def test_header_shows_status_task_timing_attempts_and_options(signed_in, dev, make_run):
    run = make_run(
        dev,
        task="email",
        payload={"to": "a@example.com"},
        tags=["vip"],
        idempotency_key="welcome-1",
        machine="medium-1x",
        queue="mail",
        max_attempts=4,
    )
    now = timezone.now()
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.EXECUTING,
        started_at=now,
        attempt_count=2,
        version="20250101.3",
    )
    body = page(signed_in, run)
    header = body[body.index('id="run-header"') : body.index("</section>")]
    for text in ("Executing", "email", "20250101.3", "Development", "vip", "welcome-1"):
        assert text in header
    assert "medium-1x" in header and ">mail<" in header
    assert "2 / 4" in header
    for label in ("Created", "Queued", "Started", "Finished", "Duration"):
        assert f"<dt>{label}</dt>" in header
    assert "Cancel run" in header and "Replay" in header


def test_payload_output_and_error(signed_in, dev, make_run):
    run = make_run(dev, payload={"order": 7, "items": ["a", "b"]})
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.FAILED,
        output=json.dumps({"ok": False}),
        error={"name": "RuntimeError", "message": "boom", "stack": "Traceback: line 3"},
    )
    body = page(signed_in, run)
    assert "&quot;order&quot;: 7" in body  # pretty JSON
    assert 'id="payload-code"' in body and 'data-copy-target="#payload-code"' in body
    assert "&quot;ok&quot;: false" in body
    assert "RuntimeError" in body and "boom" in body and "Traceback: line 3" in body
    assert "Cancel run" not in body  # finished


def test_metadata_tree_progress_bars_size_and_update_time(signed_in, dev, make_run):
    run = make_run(dev)
    metadata = {"progress": 0.25, "steps": {"upload_progress": 1, "name": "x"}}
    Run.objects.filter(pk=run.pk).update(
        metadata=metadata, metadata_updated_at=timezone.now() - timedelta(minutes=2)
    )
    body = page(signed_in, run)
    section = body[body.index('id="run-metadata"') :]
    section = section[: section.index("</section>")]
    assert 'aria-label="progress"' in section and 'aria-valuenow="25"' in section
    assert 'aria-label="steps.upload_progress"' in section
    assert '<span class="jk">name</span>' in section and "&quot;x&quot;" in section
    size = len(json.dumps(metadata, separators=(",", ":")))
    assert f"{size} B of 256.0 KB" in section
    assert "updated" in section and "2m ago" in section


def test_empty_metadata_says_so(signed_in, dev, make_run):
    body = page(signed_in, make_run(dev))
    assert "No metadata set for this run." in body


def test_attempts_timeline(signed_in, dev, make_run):
    run = make_run(dev)
    start = timezone.now() - timedelta(seconds=30)
    Attempt.objects.create(
        run=run,
        number=1,
        status=AttemptStatus.FAILED,
        started_at=start,
        completed_at=start + timedelta(seconds=5),
        error={"name": "ValueError", "message": "bad input"},
        worker_id="w-1",
    )
    Attempt.objects.create(run=run, number=2, started_at=start + timedelta(seconds=10))
    body = page(signed_in, run)
    section = body[body.index('id="run-attempts"') :]
    section = section[: section.index("</section>")]
    assert "#1" in section and "#2" in section
    assert "ValueError" in section and "bad input" in section
    assert section.count('class="timeline-bar') == 2
    assert "w-1" in section


def test_logs_and_status_events_in_time_order_without_metadata_writes(
    signed_in, dev, make_run
):
    run = make_run(dev)
    record_event(run.pk, dev.pk, RunEventKind.LOG, level="warn", message="disk low")
    record_event(run.pk, dev.pk, RunEventKind.METADATA)
    record_event(
        run.pk, dev.pk, RunEventKind.STATUS, status="EXECUTING", message="started"
    )
    body = page(signed_in, run)
    events = body[body.index('<tbody id="run-events"') :]
    events = events[: events.index("</tbody>")]
    assert (
        events.index("Run triggered")
        < events.index("disk low")
        < events.index("started")
    )
    assert 'data-level="warn"' in events
    assert 'data-kind="metadata"' not in events


STACK = 'Traceback (most recent call last):\n  File "task.py", line 3\nValueError: bad "input"'


def test_log_attributes_are_readable_and_a_stack_is_collapsed(signed_in, dev, make_run):
    run = make_run(dev)
    record_event(
        run.pk,
        dev.pk,
        RunEventKind.LOG,
        level="error",
        message="charge failed",
        attributes={
            "error": {"name": "ValueError", "message": 'bad "input"', "stack": STACK},
            "user": "u<1>",
            "attempt": 2,
            "trace": "line one\nline two",
        },
    )
    body = page(signed_in, run)
    row = body[body.index("charge failed") :]
    row = row[: row.index("</tr>")]
    # on the line: the error's name and message, short values as they are
    assert ">ValueError: bad &quot;input&quot;</span>" in row
    assert ">u&lt;1&gt;</span>" in row and ">2</span>" in row
    assert ">line one …</span>" in row
    # the stack (and the multi-line value) whole, pre-formatted, collapsed
    assert "<summary>Stack trace</summary>" in row
    assert "<details open" not in row
    assert (
        '<pre class="code">Traceback (most recent call last):\n  File &quot;task.py&quot;'
        in row
    )
    assert "<summary>trace (whole value)</summary>" in row
    assert "\\n" not in row and "{&quot;name&quot;" not in row  # no escaped JSON


def test_related_runs_parent_root_children_and_replays(signed_in, dev, make_run):
    root = make_run(dev, task="root-task")
    parent = make_run(dev, task="parent-task", parent_run_id=root.friendly_id)
    run = make_run(dev, task="middle", parent_run_id=parent.friendly_id)
    child = make_run(dev, task="child-task", parent_run_id=run.friendly_id)
    Run.objects.filter(pk=child.pk).update(status=RunStatus.COMPLETED)
    again = replay(run)
    body = page(signed_in, run)
    related = body[body.index('id="run-related"') :]
    related = related[: related.index("</section>")]
    for other in (root, parent, child, again):
        assert other.friendly_id in related
    assert "Completed" in related  # the child's status
    replayed = page(signed_in, again)
    assert "Replayed from" in replayed and run.friendly_id in replayed


def test_run_page_is_scoped_to_the_environment(client, alice, bob, dev, prod, make_run):
    prod_run = make_run(prod)
    client.force_login(alice)
    assert client.get(f"/env/dev/runs/{prod_run.friendly_id}/").status_code == 404
    assert client.get("/env/dev/runs/run_doesnotexist/").status_code == 404
    client.force_login(bob)
    assert client.get(f"/env/prod/runs/{prod_run.friendly_id}/").status_code == 404


def test_run_page_queries_do_not_grow_with_children_or_events(signed_in, dev, make_run):
    run = make_run(dev)
    make_run(dev, parent_run_id=run.friendly_id)
    record_event(run.pk, dev.pk, RunEventKind.LOG, message="one")
    with CaptureQueriesContext(connection) as few:
        page(signed_in, run)
    for i in range(8):
        make_run(dev, parent_run_id=run.friendly_id)
        record_event(run.pk, dev.pk, RunEventKind.LOG, message=f"line {i}")
        replay(run)
    with CaptureQueriesContext(connection) as many:
        page(signed_in, run)
    assert len(many) == len(few)


# --- presenters: what the live feed re-renders -----------------------------------------


def test_run_fragments_are_the_four_partials_marked_out_of_band(dev, make_run):
    run = make_run(dev, tags=["vip"])
    html = render_run_fragments(Run.objects.get(pk=run.pk))
    for fragment in ("run-header", "run-metadata", "run-attempts", "run-related"):
        assert f'id="{fragment}"' in html
    assert html.count('hx-swap-oob="true"') == 4
    assert "csrfmiddlewaretoken" not in html


def test_run_page_context_needs_only_the_run(dev, make_run):
    run = make_run(dev)
    context = run_page_context(Run.objects.get(pk=run.pk))
    assert context["run"].pk == run.pk
    assert context["env_slug"] == "dev"
    assert context["last_event_id"] == RunEvent.objects.filter(run=run).latest("id").pk


def test_event_rows_after_an_id(dev, make_run):
    run = make_run(dev)
    first = RunEvent.objects.filter(run=run).latest("id").pk
    log = record_event(run.pk, dev.pk, RunEventKind.LOG, level="info", message="hello")
    record_event(run.pk, dev.pk, RunEventKind.METADATA)
    html = render_run_event_rows(run, first)
    assert html.strip().startswith(f'<tr id="event-{log.pk}"')
    assert "hello" in html and "Run triggered" not in html
    assert render_run_event_rows(run, log.pk) == ""


def test_replays_in_the_related_fragment_come_from_the_service(dev, make_run):
    run = make_run(dev)
    new = replay(run, ReplayOverrides(payload={"n": 2}))
    html = render_run_fragments(Run.objects.get(pk=run.pk))
    assert new.friendly_id in html


def test_earlier_events_load_page_by_page(signed_in, dev, make_run, monkeypatch):
    import dashboard.presenters as presenters

    monkeypatch.setattr(presenters, "EVENT_LIMIT", 3)
    run = make_run(dev)  # "Run triggered" is the first event
    logs = [
        record_event(run.pk, dev.pk, RunEventKind.LOG, message=f"line {i}")
        for i in range(6)
    ]
    body = page(signed_in, run)
    assert "line 5" in body and "line 3" in body and "line 2" not in body
    assert f"events?before={logs[3].pk}" in body
    earlier = signed_in.get(
        f"/env/dev/runs/{run.friendly_id}/events?before={logs[3].pk}",
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert earlier.lstrip().startswith(f'<tr id="event-{logs[0].pk}"')
    assert "line 2" in earlier and "line 3" not in earlier
    assert f"events?before={logs[0].pk}" in earlier and 'hx-swap-oob="true"' in earlier
    first = signed_in.get(
        f"/env/dev/runs/{run.friendly_id}/events?before={logs[0].pk}"
    ).content.decode()
    assert "Run triggered" in first and "Load earlier events" not in first
    assert (
        signed_in.get(f"/env/dev/runs/{run.friendly_id}/events?before=x").status_code
        == 400
    )


def test_queued_for_is_the_wait_before_the_first_start_even_after_a_retry(
    dev, make_run
):
    run = make_run(dev)
    created = run.created_at
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.QUEUED,
        started_at=created + timedelta(seconds=2),
        # queued again for attempt 2, ten seconds after the first start
        queued_at=created + timedelta(seconds=12),
        attempt_count=1,
    )
    run.refresh_from_db()
    assert run_page_context(run)["timing"]["queued_for"] == timedelta(seconds=2)


def test_an_unknown_run_is_a_404_page_that_leads_back(signed_in, dev):
    response = signed_in.get("/env/dev/runs/run_doesnotexist/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "/env/dev/runs/run_doesnotexist/" in body and 'href="/"' in body
