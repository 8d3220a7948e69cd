from __future__ import annotations

import pytest

from tests.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_lands_on_the_dev_runs_list(live_url, page, alice, dev, make_run):
    run = make_run(dev, tags=["vip"])
    sign_in(page, live_url, "alice", "alice-password")
    assert page.url.endswith("/env/dev/runs/")
    page.wait_for_selector(f"#run-{run.friendly_id}")
    assert "vip" in page.inner_text(f"#run-{run.friendly_id} .col-tags")


def test_a_wrong_password_shows_an_error(live_url, page, alice):
    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "nope")
    page.click("button[type=submit]")
    assert "/accounts/login/" in page.url
    assert page.locator(".form-error").is_visible()
