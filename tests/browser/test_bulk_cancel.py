"""Bulk cancel from the runs list, in a real browser: filter, open the panel, confirm,
and watch it happen live (the worker's scheduler does the work)."""

from __future__ import annotations

import pytest

from runs.models import BulkAction, BulkActionStatus, Queue, Run
from runs.statuses import RunStatus
from runs.triggering import BatchItem, TriggerOptions, batch_trigger, trigger
from tests.conftest import sign_in, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STORM = 300


def _storm(dev) -> Run:
    """STORM queued runs tagged "storm" (held by a paused queue) and one bystander."""
    Queue.objects.create(environment=dev, name="bulk-browser", paused=True)
    options = TriggerOptions(queue="bulk-browser", tags=["storm"])
    for offset in range(0, STORM, 100):
        batch_trigger(
            dev,
            [
                BatchItem("slow-progress", {"n": offset + i}, options=options)
                for i in range(100)
            ],
        )
    bystander, _ = trigger(
        dev, "slow-progress", {}, TriggerOptions(queue="bulk-browser")
    )
    return bystander


def _submit_cancel(page, live_url: str) -> BulkAction:
    """Filter the runs list, open the panel, confirm a cancel of every matching run."""
    page.goto(f"{live_url}/env/dev/runs/?tag=storm&status=QUEUED")
    page.wait_for_selector("#runs-body .run-row")
    page.click("[data-bulk-open]")
    page.wait_for_selector(f"#bulk-counts [data-targeted='{STORM}']")
    assert page.locator("[data-eligible]").get_attribute("data-eligible") == str(STORM)
    page.check("input[name=target][value=filter]")
    page.fill("input[name=name]", "Stop the storm")
    submit = page.locator("#bulk-submit")
    assert submit.inner_text().strip() == f"Cancel {STORM} runs…"
    submit.click()
    confirm = page.locator(".confirm-dialog")
    confirm.wait_for()
    question = confirm.inner_text()
    assert f"the {STORM} runs matching" in question and "Tagged storm" in question
    confirm.locator("[data-confirm-ok]").click()
    page.wait_for_url(lambda url: "/bulk-actions/bulk_" in url)
    return BulkAction.objects.get(name="Stop the storm")


def test_a_bulk_cancel_turns_the_listed_runs_canceled_without_a_reload(
    live_url, page, alice, dev, start_worker
):
    start_worker(environments=["dev"], modules=["tests.browser.live_tasks"])
    bystander = _storm(dev)
    sign_in(page, live_url, "alice", "alice-password")
    # A second tab keeps the filtered runs list open while the first one acts.
    watcher = page.context.new_page()
    watcher.goto(f"{live_url}/env/dev/runs/?tag=storm")
    watcher.wait_for_selector("#live-indicator.live-open")
    watcher.evaluate("() => { window.__loadedAt = performance.timeOrigin; }")
    assert watcher.locator('#runs-body .run-row[data-status="QUEUED"]').count() == 25

    action = _submit_cancel(page, live_url)
    assert page.locator(f"#bulk-summary-{action.friendly_id}").is_visible()

    def completed():
        action.refresh_from_db()
        return action.status == BulkActionStatus.COMPLETED

    wait_until(completed, timeout=30)
    assert (action.targeted, action.succeeded, action.skipped) == (STORM, STORM, 0)
    watcher.wait_for_function(
        "() => document.querySelectorAll('#runs-body .run-row[data-status=\"CANCELED\"]').length === 25",
        timeout=15_000,
    )
    assert watcher.evaluate("() => window.__loadedAt === performance.timeOrigin")
    assert Run.objects.get(pk=bystander.pk).status == RunStatus.QUEUED
    canceled = Run.objects.filter(queue="bulk-browser", status=RunStatus.CANCELED)
    assert canceled.count() == STORM


def test_the_bulk_action_page_shows_progress_live_up_to_100_percent(
    live_url, page, alice, dev, start_worker, deploy
):
    deploy(
        dev, "slow-progress"
    )  # the task exists, so the storm is QUEUED (not pending a version)
    _storm(dev)
    sign_in(page, live_url, "alice", "alice-password")
    action = _submit_cancel(page, live_url)  # no worker yet: it stays pending
    page.wait_for_selector("#live-indicator.live-open")
    page.evaluate("() => { window.__loadedAt = performance.timeOrigin; }")
    summary = f"#bulk-summary-{action.friendly_id}"
    assert page.locator(summary).get_attribute("data-status") == "PENDING"

    start_worker(environments=["dev"], modules=["tests.browser.live_tasks"])
    page.wait_for_selector(f'{summary}[data-status="COMPLETED"]', timeout=30_000)
    assert page.locator(f"{summary} .bulk-percent").inner_text() == "100%"
    legend = " ".join(page.locator(f"{summary} .legend").inner_text().split())
    assert f"{STORM} canceled" in legend
    assert page.evaluate("() => window.__loadedAt === performance.timeOrigin")
