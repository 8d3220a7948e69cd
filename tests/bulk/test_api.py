"""The bulk actions API: shapes as the SDK's schemas demand, errors, isolation."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs import bulk
from runs.models import BulkAction, Run
from runs.statuses import RunStatus
from tests.api.conftest import assert_no_nulls
from tests.bulk.conftest import process_all

pytestmark = pytest.mark.django_db

BULK = "/api/v1/bulk-actions"


def test_create_from_a_filter_answers_202_with_the_id(api, dev, runs_in):
    runs_in(dev, "QUEUED", 3)
    runs_in(dev, "QUEUED", 2, task="task-b")
    response = api.post(
        BULK,
        {
            "action": "cancel",
            "name": "stop task-a",
            "filter": {
                "taskIdentifier": ["task-a"],
                "status": "QUEUED",
                "period": "1d",
            },
        },
    )
    assert response.status_code == 202, response.content
    assert list(response.json()) == ["id"]
    action = BulkAction.objects.get(friendly_id=response.json()["id"])
    assert (action.type, action.name, action.targeted) == ("CANCEL", "stop task-a", 3)
    assert (action.created_via, action.created_by) == ("api", None)
    assert "from" in action.params["filter"] and "period" not in action.params["filter"]


def test_the_object_reports_running_as_pending_and_skipped_as_failure(
    api, dev, runs_in
):
    runs_in(dev, "QUEUED", 2)
    runs_in(dev, "COMPLETED", 1)
    created = api.post(
        BULK, {"action": "cancel", "filter": {"taskIdentifier": "task-a"}}
    ).json()
    path = f"{BULK}/{created['id']}"

    pending = api.get(path).json()
    assert pending == {
        "id": created["id"],
        "type": "CANCEL",
        "status": "PENDING",
        "counts": {"total": 3, "success": 0, "failure": 0},
        "createdAt": pending["createdAt"],
    }
    BulkAction.objects.filter(friendly_id=created["id"]).update(status="RUNNING")
    assert api.get(path).json()["status"] == "PENDING"

    process_all(BulkAction.objects.get(friendly_id=created["id"]))
    done = api.get(path).json()
    assert done["status"] == "COMPLETED"
    assert done["counts"] == {"total": 3, "success": 2, "failure": 1}
    assert done["completedAt"].endswith("Z")
    assert_no_nulls(done)


def test_create_from_run_ids_replays_them(api, dev, runs_in):
    runs = runs_in(dev, "FAILED", 2)
    response = api.post(
        BULK, {"action": "replay", "runIds": [r.friendly_id for r in runs]}
    )
    assert response.status_code == 202
    action = process_all(BulkAction.objects.get(friendly_id=response.json()["id"]))
    assert action.succeeded == 2
    assert Run.objects.filter(replayed_from__in=runs).count() == 2


def test_filter_values_are_translated(api, dev, runs_in, deploy):
    run = runs_in(dev, "QUEUED", 1, task="task-q")[0]
    runs_in(dev, "QUEUED", 1, task="task-other")
    created = api.post(
        BULK,
        {
            "action": "cancel",
            "filter": {
                "queue": [{"type": "task", "name": "task-q"}],
                "isTest": False,
                "machine": "small-1x",
                "from": int(run.created_at.timestamp() * 1000) - 1000,
                "to": "2999-01-01T00:00:00Z",
            },
        },
    )
    assert created.status_code == 202, created.content
    action = BulkAction.objects.get(friendly_id=created.json()["id"])
    frozen = action.params["filter"]
    assert frozen["queue"] == ["task/task-q"]
    assert frozen["is_test"] == "false"
    assert frozen["to"] < "2999"  # clamped to the submit time
    assert action.targeted == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"action": "delete", "runIds": ["run_x"]}, "Expected one of"),
        ({"action": "cancel"}, "Exactly one of filter or runIds"),
        (
            {"action": "cancel", "runIds": ["run_x"], "filter": {"status": "QUEUED"}},
            "Exactly one of filter or runIds",
        ),
        ({"action": "cancel", "filter": {}}, "At least one filter must be provided"),
        ({"action": "cancel", "filter": {"tag": ["", " "]}}, "At least one filter"),
        (
            {"action": "cancel", "filter": {"status": "NOPE"}},
            "Invalid status values: NOPE",
        ),
        ({"action": "cancel", "filter": {"colour": "red"}}, "colour"),
        ({"action": "cancel", "filter": {"region": "eu"}}, "region is not supported"),
        (
            {"action": "replay", "runIds": ["run_x"], "targetRegion": "eu"},
            "targetRegion",
        ),
        ({"action": "cancel", "runIds": []}, "at least 1"),
        (
            {"action": "cancel", "runIds": ["run_missing"]},
            "not found in this environment",
        ),
        ({"action": "cancel", "runIds": ["run_x"], "name": "n" * 256}, "at most 255"),
    ],
)
def test_bad_bodies_are_400_with_a_clear_message(api, body, message):
    response = api.post(BULK, body)
    assert response.status_code == 400, response.content
    text = str(response.json())
    assert message in text, text
    assert response["x-should-retry"] == "false"


def test_no_matching_runs_and_too_many_runs_are_422(api, dev, runs_in, monkeypatch):
    empty = api.post(BULK, {"action": "cancel", "filter": {"taskIdentifier": "none"}})
    assert empty.status_code == 422
    assert empty.json() == {"error": "No runs match, so there is nothing to do"}
    monkeypatch.setattr(bulk, "MAX_TARGETS", 1)
    runs_in(dev, "QUEUED", 2)
    many = api.post(BULK, {"action": "cancel", "filter": {"taskIdentifier": "task-a"}})
    assert many.status_code == 422
    assert "more than 1 runs" in many.json()["error"]


def test_abort_then_abort_again_is_409(api, dev, runs_in):
    runs_in(dev, "QUEUED", 1)
    bulk_id = api.post(
        BULK, {"action": "cancel", "filter": {"taskIdentifier": "task-a"}}
    ).json()["id"]
    response = api.post(f"{BULK}/{bulk_id}/abort")
    assert (response.status_code, response.json()) == (200, {"id": bulk_id})
    action = BulkAction.objects.get(friendly_id=bulk_id)
    assert (action.status, action.aborted_via) == ("ABORTED", "api")
    assert api.get(f"{BULK}/{bulk_id}").json()["status"] == "ABORTED"
    again = api.post(f"{BULK}/{bulk_id}/abort")
    assert again.status_code == 409
    assert again.json() == {"error": f"Bulk action {bulk_id} is already aborted"}
    assert again["x-should-retry"] == "false"


def test_list_is_a_cursor_page_newest_first_with_constant_queries(api, dev, runs_in):
    runs_in(dev, "QUEUED", 1)
    ids = [
        api.post(
            BULK, {"action": "replay", "filter": {"taskIdentifier": "task-a"}}
        ).json()["id"]
        for _ in range(5)
    ]
    first = api.get(BULK, {"page[size]": "2"}).json()
    assert [a["id"] for a in first["data"]] == ids[::-1][:2]
    assert set(first["pagination"]) == {"next"}
    second = api.get(
        BULK, {"page[size]": "2", "page[after]": first["pagination"]["next"]}
    ).json()
    assert [a["id"] for a in second["data"]] == ids[::-1][2:4]
    back = api.get(
        BULK, {"page[size]": "2", "page[before]": second["pagination"]["previous"]}
    ).json()
    assert [a["id"] for a in back["data"]] == ids[::-1][:2]
    assert_no_nulls(first)

    def queries(size: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api.get(BULK, {"page[size]": size}).status_code == 200
        return len(ctx.captured_queries)

    assert queries("1") == queries("5")
    assert api.get(BULK, {"page[size]": "0"}).status_code == 400


def test_another_environments_key_sees_nothing(api, prod_api, dev, runs_in):
    run = runs_in(dev, "QUEUED", 1)[0]
    bulk_id = api.post(BULK, {"action": "cancel", "runIds": [run.friendly_id]}).json()[
        "id"
    ]
    assert prod_api.get(f"{BULK}/{bulk_id}").status_code == 404
    assert prod_api.post(f"{BULK}/{bulk_id}/abort").status_code == 404
    assert prod_api.get(BULK).json()["data"] == []
    # and a prod key cannot target dev runs by id
    response = prod_api.post(BULK, {"action": "cancel", "runIds": [run.friendly_id]})
    assert response.status_code == 400
    assert BulkAction.objects.get(friendly_id=bulk_id).status == "PENDING"


def test_a_missing_or_wrong_key_is_401(client):
    assert client.get(BULK).status_code == 401
    response = client.post(
        BULK,
        {"action": "cancel"},
        content_type="application/json",
        headers={"authorization": "Bearer tr_dev_nope"},
    )
    assert response.status_code == 401


def test_a_retried_create_with_the_same_request_key_makes_one_bulk_action(
    api, dev, runs_in
):
    runs_in(dev, "QUEUED", 1)
    body = {"action": "cancel", "filter": {"taskIdentifier": "task-a"}}
    headers = {"x-trigger-request-idempotency-key": "3f1c2f7e-retry"}
    first = api.post(BULK, body, **headers)
    second = api.post(BULK, body, **headers)
    assert first.json() == second.json()
    assert BulkAction.objects.count() == 1


def test_touched_runs_are_found_with_filter_bulk_action(api, dev, runs_in):
    canceled = runs_in(dev, "QUEUED", 2)
    runs_in(dev, "QUEUED", 1, task="task-b")
    bulk_id = api.post(
        BULK, {"action": "cancel", "filter": {"taskIdentifier": "task-a"}}
    ).json()["id"]
    process_all(BulkAction.objects.get(friendly_id=bulk_id))
    found = api.get("/api/v1/runs", {"filter[bulkAction]": bulk_id}).json()["data"]
    assert {r["id"] for r in found} == {r.friendly_id for r in canceled}
    assert {r["status"] for r in found} == {RunStatus.CANCELED}


def test_the_openapi_document_describes_the_bulk_endpoints(client):
    spec = client.get("/api/openapi.json").json()
    assert set(spec["paths"]["/api/v1/bulk-actions"]) == {"get", "post"}
    assert "/api/v1/bulk-actions/{bulkActionId}/abort" in spec["paths"]
    schema = spec["components"]["schemas"]["BulkAction"]
    assert schema["properties"]["status"]["enum"] == ["PENDING", "COMPLETED", "ABORTED"]


def test_too_many_bulk_actions_at_once_is_429_without_retry(
    api, dev, runs_in, monkeypatch
):
    monkeypatch.setattr(bulk, "MAX_ACTIVE", 1)
    runs_in(dev, "QUEUED", 1)
    body = {"action": "replay", "filter": {"taskIdentifier": "task-a"}}
    assert api.post(BULK, body).status_code == 202
    refused = api.post(BULK, body)
    assert refused.status_code == 429
    assert refused["x-should-retry"] == "false"
    assert "only run 1 bulk actions at a time" in refused.json()["error"]
