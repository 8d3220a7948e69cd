from __future__ import annotations

import json
import re
import urllib.request

import pytest

from runs.models import Queue
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


# A message the server sent before the page swapped its table: it updates a row the
# page no longer shows, inserts next to it, and carries the pager's count.
IN_FLIGHT = (
    '<tbody hx-swap-oob="outerHTML:#run-run_gone" data-live-unwrap>'
    '<tr id="run-run_gone" class="run-row"></tr></tbody>'
    '<tbody hx-swap-oob="beforebegin:#run-run_gone" data-live-unwrap>'
    '<tr id="run-run_other" class="run-row"></tr></tbody>'
    '<span id="runs-count" class="muted pager-info">7 runs on this page</span>'
)


def test_live_fragments_for_rows_not_on_the_page_are_dropped_quietly(
    live_url, page, alice, dev, make_run
):
    make_run(dev)
    sockets = []

    def through(ws):  # the real feed, plus what the test sends
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(re.compile(r"/ws/"), through)
    sign_in(page, live_url, "alice", "alice-password")
    page.wait_for_selector("#live-indicator.live-open")
    page.evaluate(
        """() => { window.__noTarget = [];
        document.body.addEventListener("htmx:oobErrorNoTarget",
          (e) => window.__noTarget.push(e.detail.target)); }"""
    )
    sockets[0].send(IN_FLIGHT)
    page.wait_for_function(
        "document.getElementById('runs-count').textContent.startsWith('7 runs')"
    )
    assert page.evaluate("() => window.__noTarget") == []
    assert page.locator("#run-run_gone, #run-run_other").count() == 0
    assert page.locator("#runs-body tr.run-row").count() == 1
