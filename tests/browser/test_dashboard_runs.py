"""The dashboard in a real browser: filters, pages, the run page and its actions."""

from __future__ import annotations

import json
import re

import pytest

from runs.metadata import MetadataUpdate, update_metadata
from runs.models import Run
from runs.statuses import RunStatus
from tests.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(page):
    """Count live-feed messages so a test can wait for the first snapshot of the page
    (the live feed re-sends the rows when it connects)."""
    page.add_init_script(
        "window.__wsMessages = 0;"
        "document.addEventListener('htmx:wsAfterMessage', () => window.__wsMessages++);"
    )
    return page


def settle(page) -> None:
    """Wait until the page's scripts are bound and the live feed sent its snapshot."""
    page.wait_for_function("document.documentElement.dataset.appReady === '1'")
    page.wait_for_function("window.__wsMessages > 0")


def mark_page(page) -> None:
    """Set a flag that a full page load would wipe: proves updates came from htmx."""
    page.evaluate("window.__noReload = true")


def assert_not_reloaded(page) -> None:
    assert page.evaluate("window.__noReload === true"), "the page was reloaded"


def row_ids(page) -> list[str]:
    return page.eval_on_selector_all(
        "#runs-body tr.run-row", "rows => rows.map(r => r.id.slice(4))"
    )


def test_filter_by_status_and_tag_updates_the_table_and_the_url(
    live_url, page, alice, dev, make_run
):
    failed = make_run(dev, task="email", tags=["vip"])
    queued_vip = make_run(dev, task="email", tags=["vip"])
    other_failed = make_run(dev, task="email", tags=["basic"])
    Run.objects.filter(pk__in=[failed.pk, other_failed.pk]).update(
        status=RunStatus.FAILED
    )
    sign_in(page, live_url, "alice", "alice-password")
    page.goto(f"{live_url}/env/dev/runs/")
    settle(page)
    assert len(row_ids(page)) == 3
    mark_page(page)

    page.click("summary:has-text('Status')")
    page.check("input[name=status][value=FAILED]")
    page.wait_for_function(
        "document.querySelectorAll('#runs-body tr.run-row').length === 2"
    )
    assert set(row_ids(page)) == {failed.friendly_id, other_failed.friendly_id}
    assert "status=FAILED" in page.url
    page.keyboard.press("Escape")

    page.fill("input[name=tag]", "vip")
    page.press("input[name=tag]", "Enter")
    page.wait_for_function(
        "document.querySelectorAll('#runs-body tr.run-row').length === 1"
    )
    assert row_ids(page) == [failed.friendly_id]
    assert re.search(r"status=FAILED.*tag=vip|tag=vip.*status=FAILED", page.url)
    assert page.locator(".filter-chip").count() == 2
    assert_not_reloaded(page)

    # Removing the status chip keeps the tag filter and unticks the box.
    page.click(".filter-chip-remove[data-unset=status]")
    page.wait_for_function(
        "document.querySelectorAll('#runs-body tr.run-row').length === 2"
    )
    assert set(row_ids(page)) == {failed.friendly_id, queued_vip.friendly_id}
    assert "status=" not in page.url
    assert not page.is_checked("input[name=status][value=FAILED]")
    assert_not_reloaded(page)

    # The filtered URL is a shareable link.
    page.goto(f"{live_url}/env/dev/runs/?status=failed&tag=vip")
    assert row_ids(page) == [failed.friendly_id]


def test_pagination_forward_and_back(live_url, page, alice, dev, make_run):
    runs = [make_run(dev) for _ in range(30)]
    newest_first = [r.friendly_id for r in reversed(runs)]
    sign_in(page, live_url, "alice", "alice-password")
    page.goto(f"{live_url}/env/dev/runs/")
    settle(page)
    assert row_ids(page) == newest_first[:25]
    mark_page(page)

    page.click("a.pager-next")
    page.wait_for_function(
        "document.querySelectorAll('#runs-body tr.run-row').length === 5"
    )
    assert row_ids(page) == newest_first[25:]
    assert "after=" in page.url
    assert page.locator("a.pager-next").count() == 0

    page.click("a.pager-previous")
    page.wait_for_function(
        "document.querySelectorAll('#runs-body tr.run-row').length === 25"
    )
    assert row_ids(page) == newest_first[:25]
    assert_not_reloaded(page)

    page.select_option("select[name=size]", "50")
    page.wait_for_function(
        "document.querySelectorAll('#runs-body tr.run-row').length === 30"
    )
    assert "size=50" in page.url


def test_open_a_run_from_the_list(live_url, page, alice, dev, make_run):
    run = make_run(dev, task="email", payload={"to": "ada@example.com"}, tags=["vip"])
    sign_in(page, live_url, "alice", "alice-password")
    page.goto(f"{live_url}/env/dev/runs/?tag=vip")
    page.click(f"#run-{run.friendly_id} a.run-link")
    page.wait_for_url(f"**/env/dev/runs/{run.friendly_id}/")
    header = page.inner_text("#run-header")
    assert run.friendly_id in header and "email" in header and "Queued" in header
    assert "ada@example.com" in page.inner_text("#payload-code")
    assert "Run triggered" in page.inner_text("#run-events")
    # The breadcrumb goes back to the list as it was filtered.
    page.click("a[data-back-to-list]")
    page.wait_for_url("**/env/dev/runs/?tag=vip")


def test_replay_with_an_edited_payload(live_url, page, alice, dev, make_run):
    run = make_run(dev, task="email", payload={"to": "ada@example.com"})
    sign_in(page, live_url, "alice", "alice-password")
    page.goto(f"{live_url}/env/dev/runs/{run.friendly_id}/")
    settle(page)
    page.click("#run-header button:has-text('Replay')")
    editor = page.locator("#replay-dialog textarea[name=payload]")
    editor.wait_for()
    assert json.loads(editor.input_value()) == {"to": "ada@example.com"}

    editor.fill('{"to": "grace@example.com",')
    assert "line 1" in page.inner_text("#replay-dialog [data-json-status]")
    assert page.is_disabled("#replay-dialog button[type=submit]")

    editor.fill('{"to": "grace@example.com", "cc": ["ada@example.com"]}')
    page.click("#replay-dialog button[type=submit]")
    page.wait_for_url(
        lambda url: run.friendly_id not in url and "/env/dev/runs/run_" in url
    )
    new_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    new = Run.objects.get(friendly_id=new_id)
    assert json.loads(new.payload) == {
        "to": "grace@example.com",
        "cc": ["ada@example.com"],
    }
    assert new.replayed_from_id == run.pk
    assert page.locator(f"#run-related a[title={run.friendly_id}]").count() == 1


def test_cancel_from_the_row_menu(live_url, page, alice, dev, make_run):
    run = make_run(dev)
    sign_in(page, live_url, "alice", "alice-password")
    page.goto(f"{live_url}/env/dev/runs/")
    settle(page)
    mark_page(page)
    page.click(f"#run-{run.friendly_id} .row-menu summary")
    page.click(f"#run-{run.friendly_id} .menu-cancel")
    dialog = page.locator("dialog.confirm-dialog")
    assert "Cancel run" in dialog.inner_text()
    dialog.locator("[data-confirm-ok]").click()
    page.wait_for_selector(f"#run-{run.friendly_id}[data-status=CANCELED]")
    assert "Canceled" in page.inner_text(f"#run-{run.friendly_id} .col-status")
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELED
    assert_not_reloaded(page)


def test_the_row_menu_survives_live_updates_of_its_run(
    live_url, page, alice, dev, make_run
):
    run = make_run(dev)
    row = f"#run-{run.friendly_id}"

    def progress(value: float) -> None:  # what a running task's metadata flush does
        update_metadata(run, MetadataUpdate(metadata={"progress": value}))
        page.wait_for_selector(f'{row} .progress[aria-valuenow="{int(value * 100)}"]')

    sign_in(page, live_url, "alice", "alice-password")
    page.goto(f"{live_url}/env/dev/runs/")
    settle(page)
    page.focus(f"{row} .row-menu summary")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"{row} .row-menu .menu-items.is-fixed")
    page.keyboard.press("ArrowDown")
    progress(0.25)
    assert page.locator(f"{row} .row-menu[open]").count() == 1
    assert page.evaluate("document.activeElement.closest('.menu-items') !== null")

    page.click(f"{row} .menu-cancel")
    progress(0.5)  # the row is replaced while the confirmation is open
    page.locator("dialog.confirm-dialog [data-confirm-ok]").click()
    page.wait_for_selector(f"{row}[data-status=CANCELED]")
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELED


def test_row_menu_by_keyboard_replays_and_offers_cancel_only_when_cancelable(
    live_url, page, alice, dev, make_run
):
    done = make_run(dev, task="email", payload={"to": "ada@example.com"})
    Run.objects.filter(pk=done.pk).update(status=RunStatus.COMPLETED)
    sign_in(page, live_url, "alice", "alice-password")
    page.goto(f"{live_url}/env/dev/runs/")
    settle(page)
    summary = page.locator(f"#run-{done.friendly_id} .row-menu summary")
    summary.focus()
    page.keyboard.press("Enter")
    page.locator(f"#run-{done.friendly_id} .row-menu .menu-items").wait_for()
    items = page.locator(f"#run-{done.friendly_id} .row-menu .menu-items > *")
    assert items.all_inner_texts() == ["Open run", "Copy run ID", "Replay…"]
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Replay…"
    page.keyboard.press("Enter")
    editor = page.locator("#replay-dialog textarea[name=payload]")
    editor.wait_for()
    assert json.loads(editor.input_value()) == {"to": "ada@example.com"}


def test_environment_switch_keeps_the_section(
    live_url, page, alice, dev, prod, make_run
):
    prod_run = make_run(prod)
    sign_in(page, live_url, "alice", "alice-password")
    page.goto(f"{live_url}/env/dev/batches/")
    page.click(".env-switcher summary")
    page.click(".env-switcher a:has-text('Production')")
    page.wait_for_url("**/env/prod/batches/")
    assert "Production" in page.inner_text(".env-switcher summary")
    page.click("nav.sidebar a:has-text('Runs')")
    page.wait_for_url("**/env/prod/runs/")
    assert row_ids(page) == [prod_run.friendly_id]


def test_keyboard_navigation_opens_a_run(live_url, page, alice, dev, make_run):
    run = make_run(dev)
    sign_in(page, live_url, "alice", "alice-password")
    page.goto(f"{live_url}/env/dev/runs/")
    settle(page)
    page.keyboard.press("j")
    page.wait_for_selector(f"#run-{run.friendly_id}.is-cursor")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/runs/{run.friendly_id}/")
    page.keyboard.press("g")
    page.keyboard.press("b")
    page.wait_for_url("**/env/dev/batches/")
