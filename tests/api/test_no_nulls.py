"""Optional fields are omitted, never null: walk every answer of every endpoint."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from runs.models import Run
from runs.statuses import RunStatus
from tests.api.conftest import ApiClient, assert_no_nulls

pytestmark = pytest.mark.django_db


@pytest.fixture
def scenario(dev, deploy, make_run):
    """Runs in many shapes: delayed, child, finished with output, failed, batched, canceled."""
    deploy(dev, "a", "b")
    now = timezone.now()
    root = make_run(dev, task="a", tags=["t"], metadata={"m": 1})
    child = make_run(dev, task="b", parent_run_id=root.friendly_id)
    delayed = make_run(dev, task="a", delay="1h", ttl="5m")
    done = make_run(dev, task="a")
    Run.objects.filter(pk=done.pk).update(
        status=RunStatus.COMPLETED,
        output=json.dumps({"ok": True}),
        started_at=now,
        finished_at=now,
    )
    failed = make_run(dev, task="a")
    Run.objects.filter(pk=failed.pk).update(
        status=RunStatus.FAILED,
        error={"name": "", "message": "x", "stack": None},
        finished_at=now,
    )
    expired = make_run(dev, task="a")
    Run.objects.filter(pk=expired.pk).update(
        status=RunStatus.EXPIRED, expired_at=now, finished_at=now
    )
    no_payload = make_run(dev, task="a", payload=None)
    Run.objects.filter(pk=no_payload.pk).update(payload="", output=None)
    return [root, child, delayed, done, failed, expired, no_payload]


@pytest.mark.parametrize("sdk", [True, False], ids=["v2-statuses", "legacy-statuses"])
def test_no_answer_contains_null(dev, scenario, sdk):
    api = ApiClient(dev.api_key, sdk=sdk)
    answers = []

    def record(response):
        assert response["Content-Type"].startswith(
            ("application/json", "application/problem+json")
        )
        answers.append((response.status_code, response.json()))
        return response.json()

    trigger = record(api.post("/api/v1/tasks/a/trigger", {"payload": {"x": None}}))
    assert record(api.get(f"/api/v3/runs/{trigger['id']}"))["payload"] == {"x": None}
    record(
        api.post(
            "/api/v1/tasks/a/trigger",
            {"payload": {"x": 1}, "options": {"idempotencyKey": "k"}},
        )
    )
    record(
        api.post(
            "/api/v1/tasks/a/trigger",
            {"payload": {"x": 1}, "options": {"idempotencyKey": "k"}},
        )
    )
    batch = record(api.post("/api/v3/batches", {"runCount": 2}))
    record(
        api.post(
            f"/api/v3/batches/{batch['id']}/items",
            raw='{"index":0,"task":"a"}\n',
            content_type="application/x-ndjson",
        )
    )
    record(
        api.post(
            f"/api/v3/batches/{batch['id']}/items",
            raw='{"index":1,"task":"b"}\n',
            content_type="application/x-ndjson",
        )
    )
    v2 = record(api.post("/api/v2/tasks/batch", {"items": [{"task": "a"}]}))
    record(api.post("/api/v1/tasks/batch", {"items": [{"task": "a"}]}))
    for batch_id in (batch["id"], v2["id"]):
        record(api.get(f"/api/v2/batches/{batch_id}"))
        record(api.get(f"/api/v1/batches/{batch_id}"))
    page = record(api.get("/api/v1/runs", {"page[size]": "3"}))
    record(
        api.get(
            "/api/v1/runs",
            {"page[size]": "3", "page[after]": page["pagination"]["next"]},
        )
    )
    for run in scenario:
        record(api.get(f"/api/v3/runs/{run.friendly_id}"))
        record(api.get(f"/api/v1/runs/{run.friendly_id}/metadata"))
    root, child, delayed = scenario[:3]
    record(
        api.put(
            f"/api/v1/runs/{child.friendly_id}/metadata",
            {"operations": [{"type": "set", "key": "a", "value": 1}]},
        )
    )
    record(api.post(f"/api/v1/runs/{root.friendly_id}/tags", {"tags": ["u"]}))
    record(api.post(f"/api/v1/runs/{delayed.friendly_id}/reschedule", {"delay": "2h"}))
    record(api.post(f"/api/v1/runs/{root.friendly_id}/replay"))
    record(api.post(f"/api/v2/runs/{trigger['id']}/cancel"))
    record(api.put("/api/v2/packets/x/payload.json"))
    record(api.post("/api/v1/idempotencyKeys/k/reset", {"taskIdentifier": "a"}))
    # error answers too
    record(api.get("/api/v3/runs/run_missing"))
    record(api.get("/api/v1/runs", {"filter[status]": "NOPE"}))
    record(api.post("/api/v1/tasks/a/trigger", {"options": {"tags": 1}}))
    record(ApiClient("").get("/api/v1/runs"))

    assert len(answers) > 30
    for status, body in answers:
        assert_no_nulls(body)
        if status >= 400:
            assert isinstance(body["error"], str) and body["error"]
    statuses = {
        item["status"]
        for status, body in answers
        if isinstance(body, dict) and "data" in body
        for item in body["data"]
    }
    assert statuses
