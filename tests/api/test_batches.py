"""Batches: v3 streamed (create + NDJSON items), v2 and v1 in one request, retrieve."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.api import tokens
from runs.models import Batch, Run
from tests.api.conftest import assert_no_nulls

pytestmark = pytest.mark.django_db
NDJSON = "application/x-ndjson"


@pytest.fixture(autouse=True)
def tasks(dev, deploy):
    deploy(dev, "a", "b")


def ndjson(*items) -> str:
    return "".join(json.dumps(item) + "\n" for item in items)


def item(index, task="a", **extra):
    return {"index": index, "task": task, "payload": {"i": index}, **extra}


def create(api, run_count, **body):
    response = api.post("/api/v3/batches", {"runCount": run_count, **body})
    return response, response.json()


def stream(api, batch_id, *items, content_type=NDJSON):
    response = api.post(
        f"/api/v3/batches/{batch_id}/items",
        raw=ndjson(*items),
        content_type=content_type,
    )
    return response, response.json()


def test_create_then_stream_items_seals_the_batch(api, dev):
    response, batch = create(api, 3, taskIdentifiers=["a", "b"])
    assert response.status_code == 202
    assert batch == {"id": batch["id"], "runCount": 3, "isCached": False}
    claims = tokens.verify(response["x-trigger-jwt"], dev.api_key)
    assert f"read:batch:{batch['id']}" in claims["scopes"]
    response, answer = stream(api, batch["id"], item(0), item(1, "b"), item(2))
    assert response.status_code == 200
    assert answer == {
        "id": batch["id"],
        "itemsAccepted": 3,
        "itemsDeduplicated": 0,
        "sealed": True,
    }
    runs = Run.objects.filter(batch__friendly_id=batch["id"]).order_by("batch_index")
    assert [(r.batch_index, r.task_identifier) for r in runs] == [
        (0, "a"),
        (1, "b"),
        (2, "a"),
    ]
    assert json.loads(runs[1].payload) == {"i": 1}
    retrieved = api.get(f"/api/v2/batches/{batch['id']}").json()
    assert retrieved["runs"] == [r.friendly_id for r in runs]
    assert retrieved["status"] == "PENDING" and retrieved["runCount"] == 3
    assert retrieved["processing"]["errors"] == []
    assert "completedAt" in retrieved["processing"]
    assert_no_nulls(retrieved)
    assert (
        api.get(f"/api/v3/runs/{runs[0].friendly_id}").json()["triggerFunction"]
        == "batchTrigger"
    )


def test_partial_stream_is_not_sealed_and_a_retry_dedupes_by_index(api):
    _, batch = create(api, 3)
    _, first = stream(api, batch["id"], item(0), item(1))
    assert first == {
        "id": batch["id"],
        "itemsAccepted": 2,
        "itemsDeduplicated": 0,
        "sealed": False,
        "enqueuedCount": 2,
        "expectedCount": 3,
    }
    assert not Batch.objects.get(friendly_id=batch["id"]).sealed
    _, retry = stream(api, batch["id"], item(0), item(1), item(2), item(2))
    assert retry["itemsAccepted"] == 1
    assert retry["itemsDeduplicated"] == 3
    assert retry["sealed"] is True
    assert Run.objects.filter(batch__friendly_id=batch["id"]).count() == 3
    _, again = stream(api, batch["id"], item(0))
    assert again == {
        "id": batch["id"],
        "itemsAccepted": 0,
        "itemsDeduplicated": 0,
        "sealed": True,
    }


def test_an_invalid_line_writes_nothing_of_that_stream(api):
    _, batch = create(api, 2)
    response, body = stream(api, batch["id"], item(0), {"index": 1})
    assert response.status_code == 400
    assert "Line 2" in body["error"] and 'at "task"' in body["error"]
    bad_json = api.post(
        f"/api/v3/batches/{batch['id']}/items",
        raw=ndjson(item(0)) + "{oops\n",
        content_type=NDJSON,
    )
    assert (
        bad_json.status_code == 400
        and bad_json.json()["error"] == "Invalid JSON on line 2"
    )
    too_many_tags = item(1, options={"tags": [str(i) for i in range(11)]})
    response, body = stream(api, batch["id"], item(0), too_many_tags)
    assert response.status_code == 422
    out_of_range = stream(api, batch["id"], item(5))[0]
    assert out_of_range.status_code == 400
    assert Run.objects.count() == 0


def test_items_need_ndjson_and_a_known_batch(api, prod_api):
    _, batch = create(api, 1)
    assert (
        stream(api, batch["id"], item(0), content_type="application/json")[
            0
        ].status_code
        == 415
    )
    assert stream(api, "batch_missing", item(0))[0].status_code == 422
    assert stream(prod_api, batch["id"], item(0))[0].status_code == 422
    assert prod_api.get(f"/api/v2/batches/{batch['id']}").status_code == 404


def test_run_count_limits(api):
    response, body = create(api, 1001)
    assert response.status_code == 400
    assert body["error"] == "Batch runCount of 1001 exceeds maximum allowed of 1000."
    assert create(api, 0)[0].status_code == 400


def test_batch_idempotency_key_returns_the_same_batch(api):
    _, first = create(api, 1, idempotencyKey="nightly")
    _, second = create(api, 1, idempotencyKey="nightly")
    assert second["id"] == first["id"]
    assert second["isCached"] is True and second["idempotencyKey"] == "nightly"


def test_streamed_item_with_a_cached_idempotency_key_counts_toward_the_seal(api, dev):
    api.post("/api/v1/tasks/a/trigger", {"options": {"idempotencyKey": "k1"}})
    _, batch = create(api, 2)
    _, answer = stream(
        api, batch["id"], item(0, options={"idempotencyKey": "k1"}), item(1)
    )
    assert answer["sealed"] is True and answer["itemsAccepted"] == 2
    runs = api.get(f"/api/v2/batches/{batch['id']}").json()["runs"]
    assert (
        runs[0] == Run.objects.get(idempotency_key="k1", batch__isnull=True).friendly_id
    )
    assert len(runs) == 2


def test_a_thousand_item_batch_is_accepted(api):
    _, batch = create(api, 1000)
    _response, answer = stream(api, batch["id"], *[item(i) for i in range(1000)])
    assert answer["sealed"] is True and answer["itemsAccepted"] == 1000
    assert Run.objects.filter(batch__friendly_id=batch["id"]).count() == 1000


def test_v2_batch_triggers_every_item_or_none(api, dev):
    response = api.post(
        "/api/v2/tasks/batch",
        {"items": [{"task": "a", "payload": {"i": i}} for i in range(50)]},
    )
    assert response.status_code == 202
    body = response.json()
    assert body == {"id": body["id"], "runCount": 50}
    assert response["x-trigger-jwt"]
    assert Run.objects.filter(batch__friendly_id=body["id"]).count() == 50
    bad = api.post(
        "/api/v2/tasks/batch",
        {"items": [{"task": "a"}, {"task": "b", "options": {"machine": "nope"}}]},
    )
    assert bad.status_code == 400
    assert 'at "items.1.options.machine"' in bad.json()["error"]
    assert Run.objects.count() == 50


def test_v2_and_v1_batch_size_limits(api):
    empty = api.post("/api/v2/tasks/batch", {"items": []})
    assert empty.json() == {"error": "Batch cannot be triggered with no items"}
    big = api.post("/api/v1/tasks/batch", {"items": [{"task": "a"}] * 501})
    assert big.status_code == 400
    assert (
        big.json()["error"]
        == "Batch size of 501 is too large. Maximum allowed batch size is 500."
    )


def test_v1_batch_lists_its_runs_and_honours_the_idempotency_header(api):
    body = {
        "items": [
            {"task": "a", "payload": 1},
            {"task": "b", "options": {"idempotencyKey": "x"}},
        ]
    }
    first = api.post(
        "/api/v1/tasks/batch", body, **{"idempotency-key": "batch-1"}
    ).json()
    assert first["isCached"] is False and first["idempotencyKey"] == "batch-1"
    assert [r["taskIdentifier"] for r in first["runs"]] == ["a", "b"]
    assert first["runs"][1]["idempotencyKey"] == "x"
    again = api.post(
        "/api/v1/tasks/batch", body, **{"idempotency-key": "batch-1"}
    ).json()
    assert again["id"] == first["id"] and again["isCached"] is True
    v1 = api.get(f"/api/v1/batches/{first['id']}").json()
    assert v1["successfulRunCount"] == 2 and v1["failedRunCount"] == 0
    assert "errors" not in v1 and "processing" not in v1
    assert_no_nulls(v1)


def test_batch_body_over_the_limit_is_413(api, settings):
    settings.RUNWATCH_API_BATCH_BODY_MAX_BYTES = 1000
    response = api.post(
        "/api/v2/tasks/batch", {"items": [{"task": "a", "payload": "x" * 2000}]}
    )
    assert response.status_code == 413


def test_a_retryable_batch_request_looks_up_its_stored_answer_once(api):
    """The request key's answer is looked for once before the work; storing it only
    falls back to a lookup when a racing attempt holds the key."""
    headers = {"x-trigger-request-idempotency-key": "req-1"}
    body = {"items": [{"task": "a", "payload": 1}]}
    with CaptureQueriesContext(connection) as queries:
        first = api.post("/api/v1/tasks/batch", body, **headers)
    assert first.status_code == 202
    lookups = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and "runs_idempotentrequest" in q["sql"]
    ]
    assert len(lookups) == 1, lookups
    again = api.post("/api/v1/tasks/batch", body, **headers)
    assert again.json() == first.json()
