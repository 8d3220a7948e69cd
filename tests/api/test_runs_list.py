"""GET /api/v1/runs: filters through RunFilter, keyset cursors, status names, query counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.actions import cancel_run
from runs.lifecycle import transition
from runs.models import BulkAction, BulkActionItem, Run
from runs.statuses import RunStatus
from tests.api.conftest import assert_no_nulls

pytestmark = pytest.mark.django_db


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["data"]]


def set_status(run: Run, status: str) -> None:
    Run.objects.filter(pk=run.pk).update(status=status)


def test_list_item_shape(api, dev, make_run):
    run = make_run(dev, task="a", tags=["x"], metadata={"p": 1, "$$streams": []})
    body = api.get("/api/v1/runs").json()
    assert body["pagination"] == {}
    (item,) = body["data"]
    assert item["id"] == run.friendly_id
    assert item["status"] == "QUEUED"
    assert item["taskIdentifier"] == "a"
    assert item["env"] == {"id": str(dev.pk), "name": "dev"}
    assert item["tags"] == ["x"]
    assert item["metadata"] == {"p": 1}
    assert item["isQueued"] is True and item["isCompleted"] is False
    assert item["costInCents"] == 0 and item["durationMs"] == 0
    assert item["createdAt"].endswith("Z")
    for absent in ("startedAt", "finishedAt", "delayedUntil", "expiredAt", "version"):
        assert absent not in item
    assert_no_nulls(body)


def test_newest_first_and_default_seven_day_window(api, dev, make_run):
    old = make_run(dev, task="a")
    Run.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    a = make_run(dev, task="a")
    b = make_run(dev, task="a")
    assert ids(api.get("/api/v1/runs")) == [b.friendly_id, a.friendly_id]
    everything = api.get("/api/v1/runs", {"filter[createdAt][period]": "30d"})
    assert ids(everything) == [b.friendly_id, a.friendly_id, old.friendly_id]


def test_each_filter(api, dev, deploy, make_run):
    deployment = deploy(dev, "a", "b")
    a = make_run(
        dev,
        task="a",
        tags=["red"],
        machine="large-1x",
        lock_to_version=deployment.version,
    )
    b = make_run(dev, task="b", tags=["blue"], test=True, queue="custom")
    cancel_run(b)
    batch_runs = api.post("/api/v2/tasks/batch", {"items": [{"task": "a"}]}).json()[
        "id"
    ]
    c = Run.objects.get(batch__friendly_id=batch_runs)
    bulk = BulkAction.objects.create(environment=dev, type="CANCEL")
    BulkActionItem.objects.create(bulk_action=bulk, run=b, outcome="succeeded")
    replayed = make_run(dev, task="b", queue="replays")
    BulkActionItem.objects.create(
        bulk_action=bulk, run=a, new_run=replayed, outcome="succeeded"
    )
    now = timezone.now()
    Run.objects.filter(pk=a.pk).update(created_at=now - timedelta(hours=3))

    def check(params, expected):
        assert set(ids(api.get("/api/v1/runs", params))) == {
            r.friendly_id for r in expected
        }, params

    check({"filter[status]": "CANCELED"}, [b])
    check({"filter[status]": "QUEUED,CANCELED"}, [a, b, c, replayed])
    check({"filter[taskIdentifier]": "b"}, [b, replayed])
    check({"filter[version]": deployment.version}, [a])
    check({"filter[tag]": "red,blue"}, [a, b])
    check({"filter[bulkAction]": bulk.friendly_id}, [a, b, replayed])
    check({"filter[schedule]": "sched_1"}, [])
    check({"filter[isTest]": "true"}, [b])
    check({"filter[isTest]": "false"}, [a, c, replayed])
    check({"filter[createdAt][period]": "1h"}, [b, c, replayed])
    check(
        {
            "filter[createdAt][from]": str(
                int((now - timedelta(hours=4)).timestamp() * 1000)
            ),
            "filter[createdAt][to]": (now - timedelta(hours=2)).isoformat(),
        },
        [a],
    )
    check({"filter[batch]": batch_runs}, [c])
    check({"filter[queue]": "custom"}, [b])
    check({"filter[queue]": "task/a"}, [a, c])
    check({"filter[machine]": "large-1x"}, [a])


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"filter[status]": "QUEUED,BOGUS"}, "filter[status]"),
        ({"filter[machine]": "huge"}, "filter[machine]"),
        ({"filter[isTest]": "maybe"}, "filter[isTest]"),
        ({"filter[createdAt][from]": "last tuesday"}, "filter[createdAt][from]"),
        ({"filter[createdAt][period]": "forever"}, "filter[createdAt][period]"),
        ({"page[size]": "0"}, "page[size]"),
        ({"page[size]": "101"}, "page[size]"),
        ({"page[size]": "ten"}, "page[size]"),
        ({"filter[nonsense]": "1"}, "filter[nonsense]"),
        ({"filter[region]": "us"}, "filter[region]"),
    ],
)
def test_bad_query_is_400_with_details(api, params, path):
    response = api.get("/api/v1/runs", params)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Query Error"
    assert body["details"][0]["path"] == [path]
    assert body["details"][0]["message"]
    assert response["x-should-retry"] == "false"


def test_unknown_status_message_names_the_value(api):
    body = api.get("/api/v1/runs", {"filter[status]": "BOGUS"}).json()
    assert body["details"][0]["message"] == "Invalid status values: BOGUS"


def test_bad_cursor_is_400(api):
    response = api.get("/api/v1/runs", {"page[after]": "not-a-cursor"})
    assert response.status_code == 400


def test_cursors_forward_and_back_across_inserts(api, dev, make_run):
    runs = [make_run(dev, task="a") for _ in range(5)]  # oldest first
    newest_first = [r.friendly_id for r in reversed(runs)]
    first = api.get("/api/v1/runs", {"page[size]": "2"}).json()
    assert [i["id"] for i in first["data"]] == newest_first[:2]
    assert set(first["pagination"]) == {"next"}
    inserted = make_run(dev, task="a")  # arrives while paging: must not shift pages
    second = api.get(
        "/api/v1/runs", {"page[size]": "2", "page[after]": first["pagination"]["next"]}
    ).json()
    assert [i["id"] for i in second["data"]] == newest_first[2:4]
    assert set(second["pagination"]) == {"next", "previous"}
    third = api.get(
        "/api/v1/runs", {"page[size]": "2", "page[after]": second["pagination"]["next"]}
    ).json()
    assert [i["id"] for i in third["data"]] == newest_first[4:]
    assert "next" not in third["pagination"]
    back = api.get(
        "/api/v1/runs",
        {"page[size]": "2", "page[before]": second["pagination"]["previous"]},
    ).json()
    assert [i["id"] for i in back["data"]] == newest_first[:2]
    assert back["pagination"]["previous"]  # the run inserted meanwhile is before it
    newest = api.get(
        "/api/v1/runs",
        {"page[size]": "2", "page[before]": back["pagination"]["previous"]},
    ).json()
    assert [i["id"] for i in newest["data"]] == [inserted.friendly_id]
    assert "previous" not in newest["pagination"]


def test_query_count_is_constant_per_page(api, dev, make_run):
    for i in range(3):
        make_run(dev, task="a", tags=[f"t{i}"], metadata={"i": i})
    with CaptureQueriesContext(connection) as small:
        assert len(ids(api.get("/api/v1/runs", {"page[size]": "100"}))) == 3
    for i in range(30):
        make_run(dev, task=f"task-{i % 3}", tags=[f"t{i}"], metadata={"i": i})
    with CaptureQueriesContext(connection) as large:
        assert len(ids(api.get("/api/v1/runs", {"page[size]": "100"}))) == 33
    assert len(large) == len(small)
    assert (
        len(large) <= 3
    )  # environments (auth) + the page (+ rate limit nothing on SQL)


def test_status_names_follow_the_api_version_header(api, legacy_api, dev, make_run):
    dequeued = make_run(dev, task="a")
    waiting = make_run(dev, task="a")
    interrupted = make_run(dev, task="a")
    set_status(dequeued, RunStatus.DEQUEUED)
    set_status(waiting, RunStatus.WAITING)
    set_status(interrupted, RunStatus.INTERRUPTED)
    current = {i["id"]: i["status"] for i in api.get("/api/v1/runs").json()["data"]}
    legacy = {
        i["id"]: i["status"] for i in legacy_api.get("/api/v1/runs").json()["data"]
    }
    assert current == {
        dequeued.friendly_id: "DEQUEUED",
        waiting.friendly_id: "WAITING",
        interrupted.friendly_id: "FAILED",
    }
    assert legacy == {
        dequeued.friendly_id: "EXECUTING",
        waiting.friendly_id: "FROZEN",
        interrupted.friendly_id: "INTERRUPTED",
    }
    # filters accept both vocabularies
    assert ids(legacy_api.get("/api/v1/runs", {"filter[status]": "FROZEN"})) == [
        waiting.friendly_id
    ]
    assert ids(api.get("/api/v1/runs", {"filter[status]": "WAITING"})) == [
        waiting.friendly_id
    ]


def test_a_run_that_moves_shows_its_new_status(api, dev, make_run):
    run = make_run(dev, task="a")
    transition(run.pk, RunStatus.DEQUEUED)
    assert api.get("/api/v1/runs").json()["data"][0]["isExecuting"] is True


def test_both_cursors_as_the_sdk_merges_them_resolve_to_the_newest(api, dev, make_run):
    runs = [make_run(dev, task="a").friendly_id for _ in range(6)][::-1]  # newest first
    p1 = api.get("/api/v1/runs", {"page[size]": "2"}).json()
    p2 = api.get(
        "/api/v1/runs", {"page[size]": "2", "page[after]": p1["pagination"]["next"]}
    ).json()
    # SDK getPreviousPage() from p2: its own `after` plus the new `before`
    back = api.get(
        "/api/v1/runs",
        {
            "page[size]": "2",
            "page[after]": p1["pagination"]["next"],
            "page[before]": p2["pagination"]["previous"],
        },
    ).json()
    assert [i["id"] for i in back["data"]] == runs[:2]
    # then getNextPage() from there: the stale `before` plus the new `after`
    forward = api.get(
        "/api/v1/runs",
        {
            "page[size]": "2",
            "page[after]": back["pagination"]["next"],
            "page[before]": p2["pagination"]["previous"],
        },
    ).json()
    assert [i["id"] for i in forward["data"]] == runs[2:4]
