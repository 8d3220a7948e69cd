"""Retrieve, cancel, replay, reschedule, metadata, tags, idempotency key reset."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import Run
from runs.statuses import RunStatus
from tests.api.conftest import assert_no_nulls

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def tasks(dev, deploy):
    deploy(dev, "a", "b")


def finish(run: Run, status: str = RunStatus.COMPLETED, **fields) -> None:
    now = timezone.now()
    Run.objects.filter(pk=run.pk).update(
        status=status, started_at=now, finished_at=now, **fields
    )


# --- retrieve ------------------------------------------------------------------


def test_retrieve_a_finished_run(api, dev, make_run):
    run = make_run(dev, task="a", payload={"in": 1}, tags=["z", "y"])
    finish(run, output=json.dumps({"out": 2}), attempt_count=1, duration_ms=1234)
    body = api.get(f"/api/v3/runs/{run.friendly_id}").json()
    assert body["status"] == "COMPLETED"
    assert body["payload"] == {"in": 1} and body["output"] == {"out": 2}
    assert body["tags"] == ["y", "z"]
    assert body["isCompleted"] and body["isSuccess"] and not body["isFailed"]
    assert body["attemptCount"] == 1 and body["durationMs"] == 1234
    assert body["depth"] == 0 and body["triggerFunction"] == "trigger"
    assert body["relatedRuns"] == {"children": []}
    assert "error" not in body and "batchId" not in body
    assert_no_nulls(body)


def test_retrieve_a_failed_run_shows_its_error(api, dev, make_run):
    run = make_run(dev, task="a")
    finish(
        run,
        RunStatus.FAILED,
        error={"name": "RuntimeError", "message": "boom", "stack": "Traceback…"},
    )
    body = api.get(f"/api/v3/runs/{run.friendly_id}").json()
    assert body["status"] == "FAILED" and body["isFailed"] is True
    assert body["error"] == {
        "name": "RuntimeError",
        "message": "boom",
        "stackTrace": "Traceback…",
    }
    assert "output" not in body


def test_retrieve_shows_root_parent_and_children_as_full_objects(api, dev, make_run):
    root = make_run(dev, task="a")
    child = make_run(
        dev, task="b", parent_run_id=root.friendly_id, resume_parent_on_completion=True
    )
    grandchild = make_run(dev, task="a", parent_run_id=child.friendly_id)
    body = api.get(f"/api/v3/runs/{child.friendly_id}").json()
    related = body["relatedRuns"]
    assert related["root"]["id"] == root.friendly_id
    assert related["parent"]["id"] == root.friendly_id
    assert [c["id"] for c in related["children"]] == [grandchild.friendly_id]
    for summary in (related["root"], related["children"][0]):
        assert {"depth", "triggerFunction", "isQueued", "tags", "costInCents"} <= set(
            summary
        )
    assert related["children"][0]["depth"] == 2
    assert body["triggerFunction"] == "triggerAndWait"
    leaf = api.get(f"/api/v3/runs/{grandchild.friendly_id}").json()["relatedRuns"]
    assert (
        leaf["root"]["id"] == root.friendly_id
        and leaf["parent"]["id"] == child.friendly_id
    )


def test_retrieve_uses_a_constant_number_of_queries(api, dev, make_run):
    root = make_run(dev, task="a")
    for _ in range(2):
        make_run(dev, task="b", parent_run_id=root.friendly_id)
    with CaptureQueriesContext(connection) as few:
        api.get(f"/api/v3/runs/{root.friendly_id}")
    for _ in range(10):
        make_run(dev, task="b", parent_run_id=root.friendly_id)
    with CaptureQueriesContext(connection) as many:
        assert (
            len(
                api.get(f"/api/v3/runs/{root.friendly_id}").json()["relatedRuns"][
                    "children"
                ]
            )
            == 12
        )
    assert len(many) == len(few)


def test_retrieve_unknown_run_is_404_without_retry(api):
    response = api.get("/api/v3/runs/run_doesnotexist")
    assert response.status_code == 404
    assert response.json() == {"error": "Run not found"}
    assert response["x-should-retry"] == "false"


# --- cancel --------------------------------------------------------------------


def test_cancel_cascades_to_children_and_is_a_no_op_when_finished(api, dev, make_run):
    parent = make_run(dev, task="a")
    child = make_run(dev, task="b", parent_run_id=parent.friendly_id)
    response = api.post(f"/api/v2/runs/{parent.friendly_id}/cancel")
    assert response.status_code == 200 and response.json() == {"id": parent.friendly_id}
    parent.refresh_from_db()
    child.refresh_from_db()
    assert parent.status == child.status == RunStatus.CANCELED
    done = make_run(dev, task="a")
    finish(done)
    again = api.post(f"/api/v2/runs/{done.friendly_id}/cancel")
    assert again.status_code == 200 and again.json() == {"id": done.friendly_id}
    done.refresh_from_db()
    assert done.status == RunStatus.COMPLETED


# --- replay --------------------------------------------------------------------


def test_replay_without_a_body_copies_the_run(api, dev, make_run):
    run = make_run(
        dev,
        task="a",
        payload={"x": 1},
        tags=["t"],
        metadata={"seed": 1},
        concurrency_key="ck",
        machine="small-2x",
        test=True,
        idempotency_key="once",
    )
    finish(run, RunStatus.FAILED)
    Run.objects.filter(pk=run.pk).update(metadata={"seed": 1, "later": 2})
    response = api.post(f"/api/v1/runs/{run.friendly_id}/replay")
    assert response.status_code == 200
    new = Run.objects.get(friendly_id=response.json()["id"])
    assert new.pk != run.pk and new.replayed_from_id == run.pk
    assert json.loads(new.payload) == {"x": 1}
    assert new.tags == ["t"] and new.metadata == {"seed": 1}
    assert new.concurrency_key == "ck" and new.machine == "small-2x" and new.is_test
    assert new.idempotency_key is None


def test_replay_with_a_body_overrides_payload_and_options(api, dev, make_run):
    run = make_run(dev, task="a", payload={"x": 1}, tags=["t"])
    superjson = json.dumps({"json": {"x": 2}})
    response = api.post(
        f"/api/v1/runs/{run.friendly_id}/replay",
        {
            "payload": superjson,
            "payloadType": "application/super+json",
            "tags": ["edited"],
            "metadata": {"m": 1},
            "machine": "large-1x",
            "delay": "1h",
            "maxAttempts": 2,
            "queue": "replays",
        },
    )
    assert response.status_code == 200, response.content
    new = Run.objects.get(friendly_id=response.json()["id"])
    assert new.payload == superjson and new.payload_type == "application/super+json"
    assert new.tags == ["edited"] and new.metadata == {"m": 1}
    assert new.machine == "large-1x" and new.status == RunStatus.DELAYED
    assert new.max_attempts == 2 and new.queue == "replays"
    plain = api.post(f"/api/v1/runs/{run.friendly_id}/replay", {"payload": {"y": 3}})
    assert api.get(f"/api/v3/runs/{plain.json()['id']}").json()["payload"] == {"y": 3}


def test_replay_body_is_strict(api, dev, make_run):
    run = make_run(dev, task="a")
    unknown = api.post(f"/api/v1/runs/{run.friendly_id}/replay", {"colour": "red"})
    assert unknown.status_code == 400
    assert "Unrecognized key" in unknown.json()["error"]
    not_string = api.post(
        f"/api/v1/runs/{run.friendly_id}/replay",
        {"payload": {"a": 1}, "payloadType": "application/super+json"},
    )
    assert not_string.status_code == 400
    assert Run.objects.count() == 1


# --- reschedule ----------------------------------------------------------------


def test_reschedule_moves_a_delayed_run_and_answers_the_run(api, dev, make_run):
    run = make_run(dev, task="a", delay="1h")
    later = (timezone.now() + timedelta(hours=5)).replace(microsecond=0)
    response = api.post(
        f"/api/v1/runs/{run.friendly_id}/reschedule", {"delay": later.isoformat()}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == run.friendly_id and body["status"] == "DELAYED"
    assert body["delayedUntil"].startswith(later.strftime("%Y-%m-%dT%H:%M:%S"))
    assert "relatedRuns" in body and "triggerFunction" in body
    assert_no_nulls(body)


@pytest.mark.parametrize(
    ("delay", "message"),
    [("2001-01-01T00:00:00Z", "Invalid delay"), ("whenever", "Invalid delay")],
)
def test_reschedule_rejects_past_or_garbage_delays(api, dev, make_run, delay, message):
    run = make_run(dev, task="a", delay="1h")
    response = api.post(f"/api/v1/runs/{run.friendly_id}/reschedule", {"delay": delay})
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_reschedule_only_delayed_runs(api, dev, make_run):
    run = make_run(dev, task="a")
    response = api.post(f"/api/v1/runs/{run.friendly_id}/reschedule", {"delay": "1h"})
    assert response.status_code == 400
    assert response.json() == {"error": "Cannot reschedule a run that is not delayed"}
    missing = api.post(f"/api/v1/runs/{run.friendly_id}/reschedule", {})
    assert missing.status_code == 400


# --- metadata ------------------------------------------------------------------


def test_metadata_replace_operations_and_get(api, dev, make_run):
    run = make_run(dev, task="a", metadata={"a": 1})
    url = f"/api/v1/runs/{run.friendly_id}/metadata"
    replaced = api.put(url, {"metadata": {"progress": 0.1}})
    assert replaced.status_code == 200 and replaced.json() == {
        "metadata": {"progress": 0.1}
    }
    ops = api.put(
        url,
        {
            "operations": [
                {"type": "set", "key": "$.step.name", "value": "load"},
                {"type": "increment", "key": "count", "value": 2},
                {"type": "append", "key": "log", "value": "x"},
                {"type": "delete", "key": "progress"},
            ]
        },
    )
    assert ops.json() == {
        "metadata": {"step": {"name": "load"}, "count": 2, "log": ["x"]}
    }
    got = api.get(url).json()
    assert got == {
        "metadata": {"step": {"name": "load"}, "count": 2, "log": ["x"]},
        "metadataType": "application/json",
    }


def test_parent_and_root_operations(api, dev, make_run):
    root = make_run(dev, task="a")
    child = make_run(dev, task="b", parent_run_id=root.friendly_id)
    api.put(
        f"/api/v1/runs/{child.friendly_id}/metadata",
        {
            "parentOperations": [{"type": "increment", "key": "done", "value": 1}],
            "rootOperations": [{"type": "set", "key": "seen", "value": True}],
        },
    )
    root.refresh_from_db()
    assert root.metadata == {"done": 1, "seen": True}


def test_metadata_limits_and_window(api, dev, make_run):
    run = make_run(dev, task="a")
    url = f"/api/v1/runs/{run.friendly_id}/metadata"
    big = api.put(url, {"metadata": {"blob": "x" * 262_144}})
    assert big.status_code == 413
    assert big.json() == {"error": "Metadata exceeds maximum size of 262144 bytes"}
    bad = api.put(url, {"operations": [{"type": "explode", "key": "a"}]})
    assert bad.status_code == 400
    finish(run)
    assert api.put(url, {"metadata": {"ok": 1}}).status_code == 200
    Run.objects.filter(pk=run.pk).update(
        finished_at=timezone.now() - timedelta(hours=2)
    )
    late = api.put(url, {"metadata": {"late": 1}})
    assert late.status_code == 422
    assert late.json() == {"error": "Cannot update metadata for a completed run"}
    run.refresh_from_db()
    assert run.metadata == {"ok": 1}


def test_metadata_request_over_two_mib_is_413(api, dev, make_run):
    run = make_run(dev, task="a")
    response = api.put(
        f"/api/v1/runs/{run.friendly_id}/metadata", {"metadata": {"b": "x" * 2_200_000}}
    )
    assert response.status_code == 413
    assert response.json() == {"error": "Request body too large"}


# --- tags ----------------------------------------------------------------------


def test_add_tags(api, dev, make_run):
    run = make_run(dev, task="a", tags=["a"])
    url = f"/api/v1/runs/{run.friendly_id}/tags"
    assert api.post(url, {"tags": ["a", "b", "c"]}).json() == {
        "message": "Successfully set 2 new tags."
    }
    assert api.post(url, {"tags": "c"}).json() == {"message": "No new tags to add"}
    assert api.post(url, {"tags": ["", " "]}).json() == {
        "message": "No new tags to add"
    }
    run.refresh_from_db()
    assert run.tags == ["a", "b", "c"]
    assert (
        api.get("/api/v1/runs", {"filter[tag]": "b"}).json()["data"][0]["id"]
        == run.friendly_id
    )


def test_more_than_ten_tags_is_422_with_the_tags_left_out(api, dev, make_run):
    run = make_run(dev, task="a", tags=[f"t{i}" for i in range(9)])
    response = api.post(f"/api/v1/runs/{run.friendly_id}/tags", {"tags": ["x", "y"]})
    assert response.status_code == 422
    assert response.json() == {
        "error": "Runs can only have 10 tags, you're trying to set 11. These tags have not been set: 'x', 'y'."
    }
    assert (
        api.post(
            f"/api/v1/runs/{run.friendly_id}/tags", {"tags": ["x" * 129]}
        ).status_code
        == 400
    )


# --- idempotency key reset -------------------------------------------------------


def test_reset_idempotency_key_lets_the_next_trigger_run_again(api):
    first = api.post(
        "/api/v1/tasks/a/trigger", {"options": {"idempotencyKey": "k"}}
    ).json()
    reset = api.post("/api/v1/idempotencyKeys/k/reset", {"taskIdentifier": "a"})
    assert reset.status_code == 200 and reset.json() == {"id": "k"}
    second = api.post(
        "/api/v1/tasks/a/trigger", {"options": {"idempotencyKey": "k"}}
    ).json()
    assert second["id"] != first["id"] and second["isCached"] is False
    assert (
        api.post(
            "/api/v1/idempotencyKeys/nope/reset", {"taskIdentifier": "a"}
        ).status_code
        == 404
    )
    assert api.post("/api/v1/idempotencyKeys/k/reset", {}).status_code == 400
