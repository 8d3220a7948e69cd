"""The Test page in chromium: pick a task, edit JSON, add tags, run, land on the run."""

from __future__ import annotations

import json
import re

import pytest

from runs.models import Run, TestTemplate
from runs.statuses import RunStatus
from tests.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_task(page, live_url: str, task: str) -> None:
    """Through the task list: search, then Enter opens the first match."""
    page.goto(f"{live_url}/env/dev/test/")
    page.fill("[data-test-search]", task)
    page.wait_for_selector(f'.test-task-row[data-task="{task}"]')
    page.wait_for_function("document.querySelectorAll('.test-task-row').length === 1")
    page.press("[data-test-search]", "Enter")
    page.wait_for_url(f"**/env/dev/test/tasks/{task}/")


def test_enter_right_after_typing_opens_the_task_typed(
    live_url, page, alice, dev, deploy
):
    deploy(dev, "alpha-first", "zeta-wanted")
    sign_in(page, live_url, "alice", "alice-password")
    page.goto(f"{live_url}/env/dev/test/")
    page.wait_for_function("document.documentElement.dataset.appReady === '1'")
    search = page.locator("[data-test-search]")
    search.press_sequentially("zeta")
    search.press("Enter")  # before the debounced search has answered
    page.wait_for_url("**/env/dev/test/tasks/zeta-wanted/")


def test_run_a_task_with_a_payload_and_a_tag_and_watch_it_complete(
    live_url, page, alice, dev, deploy, start_worker
):
    deploy(dev, "add")  # the worker registers its own tasks once it starts, below
    sign_in(page, live_url, "alice", "alice-password")
    open_task(page, live_url, "add")

    editor = page.locator("#id_payload")
    editor.fill("")
    editor.press_sequentially('{"a": 2, "b": 40}')
    page.locator("#payload-status").filter(has_text="Valid JSON").wait_for()
    page.fill("#tag-entry", "from-browser")
    page.press("#tag-entry", "Enter")
    assert page.inner_text("[data-tag-chip]").startswith("from-browser")
    assert page.inner_text("[data-tag-count]") == "1/10"

    editor.press("Control+Enter")
    page.wait_for_url(re.compile(r"/env/dev/runs/run_\w+/$"))
    run = Run.objects.get()
    assert page.url.endswith(f"/env/dev/runs/{run.friendly_id}/")
    assert run.is_test and run.tags == ["from-browser"]
    assert json.loads(run.payload) == {"a": 2, "b": 40}
    assert f"Test run {run.friendly_id} created" in page.inner_text(".toasts")

    # The run waits in its queue until a worker starts; the open page follows it live.
    watch_status(page, ["Queued"])
    start_worker(environments=["dev"])
    watch_status(page, ["Completed"])
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert json.loads(run.output) == {"sum": 42, "attempt": 1}


def watch_status(page, labels: list[str]) -> None:
    """The run page, once its live feed is open, shows the status badge pass through
    `labels` in order, without a reload."""
    page.locator("#live-indicator.live-open").wait_for(timeout=10_000)
    badge = page.locator("#run-header .badge").first
    for label in labels:
        badge.filter(has_text=label).wait_for(timeout=30_000)


def test_invalid_json_is_pointed_out_and_nothing_runs(
    live_url, page, alice, dev, deploy
):
    deploy(dev, "add")
    sign_in(page, live_url, "alice", "alice-password")
    page.goto(f"{live_url}/env/dev/test/tasks/add/")
    page.locator("#live-indicator.live-open").wait_for()  # header counters are live
    page.fill("#id_payload", '{\n  "a": 1,\n  "b": 2,\n}')
    status = page.locator("#payload-status")
    status.filter(has_text="line 4, column 1").wait_for()
    assert "Trailing comma before '}'" in status.inner_text()
    assert "is-bad" in page.get_attribute("#tab-payload", "class")

    page.click("[data-run-test]")  # blocked in the page: the form is not sent
    page.keyboard.press("Control+Enter")
    assert page.url.endswith("/env/dev/test/tasks/add/")
    assert not Run.objects.exists()

    page.click("#tab-metadata")
    page.fill("#id_metadata", "[1, 2]")
    page.locator("#metadata-status").filter(
        has_text="Metadata must be a JSON object"
    ).wait_for()

    # Fixing the payload and formatting it keeps big integers exactly.
    page.click("#tab-payload")
    page.fill(
        "#id_payload", '{"id":12345678901234567890,"list":[1,{"x":"\\u00e9"}],"e":{}}'
    )
    page.click("[data-format]")
    assert page.input_value("#id_payload") == (
        '{\n  "id": 12345678901234567890,\n  "list": [\n    1,\n    {\n'
        '      "x": "\\u00e9"\n    }\n  ],\n  "e": {}\n}'
    )


def test_options_are_checked_by_the_server_and_shown_by_the_field(
    live_url, page, alice, dev, deploy
):
    deploy(dev, "add", "noop")
    sign_in(page, live_url, "alice", "alice-password")
    page.goto(f"{live_url}/env/dev/test/tasks/add/")
    page.fill("#id_delay", "whenever")
    page.fill("#id_max_attempts", "0")
    page.press("#id_delay", "Enter")  # Enter in a field does not run the test
    assert page.url.endswith("/env/dev/test/tasks/add/")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(".alert-error")
    assert "Nothing was triggered" in page.inner_text(".alert-error")
    assert "Invalid delay: whenever" in page.inner_text("#id_delay_error")
    assert "maxAttempts must be an integer ≥ 1" in page.inner_text(
        "#id_max_attempts_error"
    )
    assert page.input_value("#id_delay") == "whenever"
    assert not Run.objects.exists()

    # "/" opens the task switcher; typing filters it, Enter goes to the first match.
    page.locator("#id_delay").blur()
    page.keyboard.press("/")
    page.keyboard.type("noo")
    page.keyboard.press("Enter")
    page.wait_for_url("**/env/dev/test/tasks/noop/")


def test_previous_runs_and_templates_fill_the_form(
    live_url, page, alice, dev, deploy, make_run
):
    deploy(dev, "add")
    earlier = make_run(
        dev, task="add", payload={"a": 7, "b": 8}, test=True, tags=["earlier"]
    )
    sign_in(page, live_url, "alice", "alice-password")
    page.goto(f"{live_url}/env/dev/test/tasks/add/")

    page.click(f'[data-load-run="{earlier.friendly_id}"]')
    page.locator(".test-note").filter(has_text="Loaded from test run").wait_for()
    assert json.loads(page.input_value("#id_payload")) == {"a": 7, "b": 8}
    assert page.inner_text("[data-tag-chip]").startswith("earlier")
    assert page.url.endswith(f"?run={earlier.friendly_id}")

    page.fill("#template-name", "Seven and eight")
    page.press("#template-name", "Enter")
    page.wait_for_selector(".template-item.is-loaded")
    template = TestTemplate.objects.get()
    assert template.name == "Seven and eight"
    assert template.options["tags"] == ["earlier"]
    assert page.url.endswith(f"?template={template.pk}")

    page.click(".template-rename > summary")
    page.fill(".template-rename input[name=name]", "Renamed")
    page.press(".template-rename input[name=name]", "Enter")
    page.locator(".template-done").filter(has_text="Renamed template").wait_for()
    assert TestTemplate.objects.get().name == "Renamed"

    page.click(".template-item button.danger")
    page.click("dialog[open] [data-confirm-ok]")  # the dashboard's confirmation dialog
    page.locator(".template-done").filter(has_text="Deleted template").wait_for()
    assert not TestTemplate.objects.exists()


CASES = [
    "",
    "{}",
    '{"a": [1, 2.5, -3e10, true, false, null], "b": {"c": "\\"q\\" \\u00e9"}}',
    "[]",
    "0",
    '"text"',
    "{",
    "[1, 2",
    '{"a": 1,}',
    "[1,]",
    "{'a': 1}",
    '{"a" 1}',
    '{"a": 01}',
    '{"a": 1.}',
    '{"a": .5}',
    '{"a": NaN}',
    '{"a": Infinity}',
    '{"a": True}',
    '{"a": undefined}',
    '{"a": "line\nbreak"}',
    '{"a": "bad \\x escape"}',
    '{"a": "\\u12"}',
    "// comment\n{}",
    "{} {}",
    '{"a": 1} x',
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    '{"a": -}',
    '{"a": "unterminated',
    "nul",
    '{"big": 123456789012345678901234567890}',
]


def python_accepts(text: str) -> bool:
    if not text.strip():
        return True  # blank means {} on both sides

    def reject(name):
        raise ValueError(name)

    try:
        json.loads(text, parse_constant=reject)
    except ValueError:
        return False
    return True


def test_the_in_page_json_checker_agrees_with_the_server(
    live_url, page, alice, dev, deploy
):
    deploy(dev, "add")
    sign_in(page, live_url, "alice", "alice-password")
    page.goto(f"{live_url}/env/dev/test/tasks/add/")
    results = page.evaluate(
        """cases => cases.map(text => {
            const error = window.runwatchJson.check(text);
            if (error) {
                const at = window.runwatchJson.position(text, error.offset);
                return {ok: false, message: error.message, line: at.line, column: at.column};
            }
            return {ok: true, compact: text.trim() ? window.runwatchJson.format(text, 0) : "{}",
                    pretty: text.trim() ? window.runwatchJson.format(text, 2) : "{}"};
        })""",
        CASES,
    )
    for text, result in zip(CASES, results, strict=True):
        assert result["ok"] == python_accepts(text), (text, result)
        if result["ok"]:
            expected = json.loads(text) if text.strip() else {}
            assert json.loads(result["compact"]) == expected
            assert json.loads(result["pretty"]) == expected
        else:
            assert result["message"] and result["line"] >= 1 and result["column"] >= 1
    by_text = dict(zip(CASES, results, strict=True))
    assert by_text['{"a": 1,}']["message"] == "Trailing comma before '}'"
    assert by_text["{'a': 1}"]["message"] == (
        "Property names need double quotes, not single quotes"
    )
    assert by_text['{"a": "line\nbreak"}']["line"] == 1
    assert by_text["[1, 2"]["message"] == (
        "Missing ']' to close the '[' at line 1, column 1"
    )
