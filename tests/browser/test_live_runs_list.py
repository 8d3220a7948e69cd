from __future__ import annotations

import json
import re
import urllib.request

import pytest

from runs.lifecycle import transition
from runs.models import Queue, Run
from runs.statuses import RunStatus
from tests.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Records every state the row passes through, as the page shows it.
RECORD_ROW = """(fid) => {
  window.__seen = [];
  const record = () => {
    const row = document.getElementById("run-" + fid);
    if (!row) return;
    const bar = row.querySelector(".progress");
    const state = row.dataset.status + ":" + (bar ? bar.getAttribute("aria-valuenow") : "-");
    if (window.__seen[window.__seen.length - 1] !== state) window.__seen.push(state);
  };
  new MutationObserver(record).observe(document.body, {subtree: true, childList: true, attributes: true});
  record();
}"""


def trigger_through_the_api(live_url: str, environment, task: str, body: dict) -> str:
    request = urllib.request.Request(
        f"{live_url}/api/v1/tasks/{task}/trigger",
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {environment.api_key}",
            "Content-Type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["id"]


def test_a_triggered_run_appears_and_goes_live_to_completed(
    live_url, page, alice, dev, start_worker
):
    # A paused queue holds the run in QUEUED until the test lets it go.
    queue = Queue.objects.create(environment=dev, name="live-browser", paused=True)
    start_worker(environments=["dev"], modules=["tests.browser.live_tasks"])
    sign_in(page, live_url, "alice", "alice-password")
    page.wait_for_selector("#live-indicator.live-open")
    page.evaluate("() => { window.__loadedAt = performance.timeOrigin; }")

    run_id = trigger_through_the_api(
        live_url,
        dev,
        "slow-progress",
        {
            "payload": {"steps": 4, "pause": 0.5},
            "options": {"queue": {"name": "live-browser"}},
        },
    )
    page.evaluate(RECORD_ROW, run_id)
    row = page.locator(f"#run-{run_id}")
    row.wait_for()
    assert row.get_attribute("data-status") == "QUEUED"

    queue.paused = False
    queue.save(update_fields=["paused"])
    page.wait_for_selector(f'#run-{run_id}[data-status="COMPLETED"]', timeout=20_000)

    seen = page.evaluate("() => window.__seen")
    statuses = [state.split(":")[0] for state in seen]
    assert statuses[0] == "QUEUED" and statuses[-1] == "COMPLETED"
    assert "EXECUTING" in statuses
    assert statuses.index("EXECUTING") < statuses.index("COMPLETED")
    progress = {state.split(":")[1] for state in seen if state.startswith("EXECUTING")}
    assert len(progress - {"-"}) >= 2, seen  # the bar moved while it ran
    assert seen[-1] == "COMPLETED:100"
    # no reload happened: the page is the one that was opened
    assert page.evaluate("() => window.__loadedAt === performance.timeOrigin")


def test_updates_in_flight_when_the_filters_change_do_not_touch_the_new_table(
    live_url, page, alice, dev, make_run
):
    """Messages the server sent for the previous filters (a shown row changing, a
    matching run inserted next to it) arrive after the table was swapped: they are
    dropped, the new filters' snapshot is what shows, and htmx reports no fragment
    without a target (htmx:oobErrorNoTarget)."""
    queued = make_run(dev)
    failed = make_run(dev)
    Run.objects.filter(pk=failed.pk).update(status=RunStatus.FAILED)
    held: list[str] = []
    sockets = []

    def through(ws):  # the real feed, held back while the test says so
        server = ws.connect_to_server()
        server.on_message(lambda m: held.append(m) if held_back else ws.send(m))
        sockets.append(ws)

    held_back = False
    page.route_web_socket(re.compile(r"/ws/"), through)
    sign_in(page, live_url, "alice", "alice-password")
    page.goto(f"{live_url}/env/dev/runs/?status=QUEUED")
    page.wait_for_selector("#live-indicator.live-open")
    page.wait_for_selector(f"#run-{queued.friendly_id}")
    page.evaluate(
        """() => { window.__noTarget = [];
        document.body.addEventListener("htmx:oobErrorNoTarget",
          (e) => window.__noTarget.push(e.detail.target)); }"""
    )
    held_back = True
    transition(queued.pk, RunStatus.DEQUEUED)  # a shown row changes…
    inserted = make_run(dev)  # …and a matching run is inserted before it
    for _ in range(200):  # Playwright runs the socket's handler while it waits
        if any(inserted.friendly_id in m for m in held):
            break
        page.wait_for_timeout(50)
    assert any(inserted.friendly_id in m for m in held)

    # what the filter bar does for other filters: one swap of the runs table and
    # the URL pushed (the page then tells the feed what it shows)
    page.evaluate(
        """(url) => { history.pushState(null, "", url);
        htmx.ajax("GET", url, {target: "#runs-table", swap: "outerHTML"}); }""",
        "/env/dev/runs/?status=FAILED",
    )
    page.wait_for_selector(f"#run-{queued.friendly_id}", state="detached")
    for message in held:  # what was in flight arrives late
        sockets[-1].send(message)  # the page's socket (the sign-in page had one)
    held_back = False
    page.wait_for_timeout(500)

    assert page.evaluate("() => window.__noTarget") == []
    assert page.eval_on_selector_all(
        "#runs-body tr.run-row", "rows => rows.map(r => r.id)"
    ) == [f"run-{failed.friendly_id}"]
    assert page.inner_text("#runs-count") == "1 run on this page"
