"""The task SDK: no-ops outside a run; inside one, what it sends its worker."""

from __future__ import annotations

from multiprocessing import Pipe

import pytest

from runs import sdk
from runs.models import Run
from runs.sdk import MetadataTooLarge, logger, metadata, task

CTX = sdk.Context(
    run=sdk.RunInfo(id="run_x", tags=["t"], is_test=False, created_at=""),
    attempt=1,
    task="sdk-test",
    environment="dev",
    version="20250101.1",
    queue="task/sdk-test",
    machine="small-1x",
)


@pytest.fixture
def worker_end():
    """Enter a run whose worker is the returned pipe end; leave it afterwards."""
    ours, theirs = Pipe()
    sdk._enter_run(theirs, CTX, {"owner": "ops", "n": 1})
    yield ours
    sdk._leave_run()


def sent(conn) -> list[tuple]:
    messages = []
    while conn.poll(0.1):
        messages.append(conn.recv())
    return messages


def test_metadata_and_logger_are_no_ops_outside_a_run():
    assert sdk.current_context() is None
    metadata.set("progress", 0.5).increment("n").append("l", 1).delete("x")
    metadata.parent.set("a", 1)
    metadata.root.increment("b")
    metadata.replace({"everything": True})
    metadata.flush()
    logger.info("nobody hears this", a=1)
    assert metadata.current() == {} and metadata.get("progress") is None


def test_trigger_and_wait_needs_a_run():
    @task(id="sdk-outside")
    def outside(payload, ctx):
        return payload

    with pytest.raises(RuntimeError, match="inside a task run"):
        outside.trigger_and_wait({})


@pytest.mark.django_db
def test_trigger_outside_a_run_uses_the_service(dev, deploy, monkeypatch):
    @task(id="sdk-direct")
    def direct(payload, ctx):
        return payload

    deploy(dev, "sdk-direct")
    monkeypatch.setenv("RUNWATCH_ENV", "dev")
    handle = direct.trigger({"a": 1}, tags=["x"], idempotency_key="once")
    again = direct.trigger({"a": 1}, idempotency_key="once")
    run = Run.objects.get(friendly_id=handle.id)
    assert (run.task_identifier, run.tags, handle.is_cached) == (
        "sdk-direct",
        ["x"],
        False,
    )
    assert again.id == handle.id and again.is_cached
    handles = direct.batch_trigger([{"i": 1}, {"i": 2}])
    assert len({h.id for h in handles}) == 2


def test_metadata_operations_apply_locally_and_flush_in_order(worker_end):
    metadata.set("progress", 0.25).increment("n", 2).decrement("n").append("l", "a")
    metadata.append("l", "b").remove("l", "a").delete("owner")
    assert metadata.current() == {"n": 2, "progress": 0.25, "l": ["b"]}
    assert metadata.get("n") == 2 and metadata.get("missing", 7) == 7
    metadata.parent.increment("children", 1)
    metadata.root.decrement("budget", 5)
    logger.warn("careful", step=3, when=object)
    metadata.flush()
    [(kind, ops, logs)] = sent(worker_end)
    assert kind == "flush"
    assert [op["type"] for op in ops["self"]] == [
        "set",
        "increment",
        "increment",
        "append",
        "append",
        "remove",
        "delete",
    ]
    assert ops["self"][2]["value"] == -1
    assert ops["parent"] == [{"type": "increment", "key": "children", "value": 1}]
    assert ops["root"] == [{"type": "increment", "key": "budget", "value": -5}]
    assert logs[0]["level"] == "warn" and logs[0]["attributes"]["step"] == 3
    assert isinstance(logs[0]["attributes"]["when"], str)  # made JSON-safe


def test_an_operation_that_changes_nothing_is_not_sent(worker_end):
    metadata.delete("absent").remove("owner", "x")
    metadata.flush()
    assert sent(worker_end) == []


def test_metadata_over_the_limit_raises_and_keeps_the_old_value(worker_end, settings):
    settings.RUNWATCH_METADATA_MAX_BYTES = 1000
    with pytest.raises(MetadataTooLarge, match="1000 bytes"):
        metadata.set("blob", "x" * 1000)
    assert metadata.current() == {"owner": "ops", "n": 1}
    metadata.replace({"small": True})
    assert metadata.current() == {"small": True}


def test_leaving_a_run_flushes_and_forgets_it(worker_end):
    metadata.set("a", 1)
    logger.info("bye")
    sdk._leave_run()
    [(_kind, ops, logs)] = sent(worker_end)
    assert ops["self"][0]["key"] == "a" and logs[0]["message"] == "bye"
    assert metadata.current() == {} and sdk.current_context() is None
    metadata.set("after", 1)  # a no-op again
    assert sent(worker_end) == []


def test_retry_options_take_python_or_trigger_dev_names():
    @task(id="sdk-retry", retry={"max_attempts": 5, "min_timeout_ms": 200})
    def snake(payload, ctx):
        return None

    @task(id="sdk-retry-camel", retry={"maxAttempts": 2, "factor": 3})
    def camel(payload, ctx):
        return None

    assert snake.retry["maxAttempts"] == 5 and snake.retry["minTimeoutInMs"] == 200
    assert camel.retry["maxAttempts"] == 2 and camel.retry["factor"] == 3
    with pytest.raises(ValueError, match="Unknown retry option"):
        task(id="sdk-bad-retry", retry={"attempts": 3})
    with pytest.raises(ValueError, match="≥ 1"):
        task(id="sdk-zero-retry", retry={"max_attempts": 0})


def test_task_ids_are_kebab_case():
    with pytest.raises(ValueError, match="kebab-case"):
        task(id="Email_Sequence")
