"""POST /api/v1/tasks/{task}/trigger."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from runs.api import tokens
from runs.models import Run
from tests.api.conftest import ApiClient, assert_no_nulls

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(dev, deploy):
    deploy(dev, "send-email", "other")
    return "send-email"


def trigger(api, task, body, **headers):
    response = api.post(f"/api/v1/tasks/{task}/trigger", body, **headers)
    return response, response.json()


def test_trigger_with_a_json_payload(api, task):
    response, body = trigger(api, task, {"payload": {"to": "ada@example.com"}})
    assert response.status_code == 200
    assert body == {"id": body["id"], "isCached": False}
    run = Run.objects.get(friendly_id=body["id"])
    assert run.status == "QUEUED"
    assert run.payload_type == "application/json"
    assert json.loads(run.payload) == {"to": "ada@example.com"}


def test_trigger_answers_a_public_token_for_the_run(api, dev, task):
    response, body = trigger(api, task, {"payload": 1})
    claims = tokens.verify(response["x-trigger-jwt"], dev.api_key)
    assert claims["sub"] == str(dev.pk) and claims["pub"] is True
    assert f"read:runs:{body['id']}" in claims["scopes"]
    assert json.loads(response["x-trigger-jwt-claims"]) == {
        "sub": str(dev.pk),
        "pub": True,
    }
    reader = ApiClient(response["x-trigger-jwt"])
    assert reader.get(f"/api/v3/runs/{body['id']}").status_code == 200


def test_superjson_and_text_payloads_are_stored_as_received_and_decoded(api, task):
    superjson = json.dumps(
        {
            "json": {"at": "2024-06-25T15:45:26.123Z", "n": 1},
            "meta": {"values": {"at": ["Date"]}},
        }
    )
    _, sj = trigger(
        api,
        task,
        {"payload": superjson, "options": {"payloadType": "application/super+json"}},
    )
    _, text = trigger(
        api, task, {"payload": "hello", "options": {"payloadType": "text/plain"}}
    )
    run = Run.objects.get(friendly_id=sj["id"])
    assert run.payload == superjson and run.payload_type == "application/super+json"
    assert api.get(f"/api/v3/runs/{sj['id']}").json()["payload"] == {
        "at": "2024-06-25T15:45:26.123Z",
        "n": 1,
    }
    assert api.get(f"/api/v3/runs/{text['id']}").json()["payload"] == "hello"


def test_non_string_payload_for_a_string_type_is_400(api, task):
    response, body = trigger(
        api, task, {"payload": {"a": 1}, "options": {"payloadType": "text/plain"}}
    )
    assert response.status_code == 400
    assert "payload must be a string" in body["error"]


def test_every_option_is_applied(api, dev, task, make_run):
    parent = make_run(dev, task="other")
    before = timezone.now()
    response, body = trigger(
        api,
        task,
        {
            "payload": {"n": 1},
            "options": {
                "queue": {"name": "emails"},
                "concurrencyKey": 42,
                "delay": "1h",
                "ttl": 5400,
                "idempotencyKey": "k" * 64,
                "idempotencyKeyTTL": "2h",
                "idempotencyKeyOptions": {"key": "user-key", "scope": "global"},
                "machine": "medium-1x",
                "maxAttempts": 7,
                "maxDuration": 2,
                "metadata": {"step": "start"},
                "tags": ["b", "a", " ", "a"],
                "test": True,
                "priority": 1.5,
                "parentRunId": parent.friendly_id,
                "resumeParentOnCompletion": True,
            },
        },
    )
    assert response.status_code == 200, body
    run = Run.objects.get(friendly_id=body["id"])
    assert run.queue == "emails"
    assert run.concurrency_key == "42"
    assert run.status == "DELAYED"
    assert timedelta(minutes=59) < run.delay_until - before < timedelta(minutes=61)
    assert run.ttl == "1h30m"
    assert run.idempotency_key == "k" * 64 and run.idempotency_key_user == "user-key"
    assert (
        timedelta(minutes=119)
        < run.idempotency_key_expires_at - before
        < timedelta(minutes=121)
    )
    assert run.machine == "medium-1x"
    assert run.max_attempts == 7
    assert run.max_duration == 5  # clamped to the 5 s minimum
    assert run.metadata == {"step": "start"} and run.seed_metadata == {"step": "start"}
    assert run.tags == ["a", "b"]
    assert run.is_test is True
    assert run.priority_ms == 1500
    assert run.parent_id == parent.pk and run.depth == 1
    retrieved = api.get(f"/api/v3/runs/{body['id']}").json()
    assert retrieved["idempotencyKey"] == "user-key"
    assert retrieved["triggerFunction"] == "triggerAndWait"
    assert retrieved["relatedRuns"]["parent"]["id"] == parent.friendly_id
    assert retrieved["relatedRuns"]["root"]["id"] == parent.friendly_id
    assert_no_nulls(retrieved)


def test_lock_to_version_pins_the_deployment(api, dev, deploy, task):
    first = deploy(dev, "send-email", "other", "third")
    _, body = trigger(api, task, {"options": {"lockToVersion": first.version}})
    assert Run.objects.get(friendly_id=body["id"]).version == first.version
    response, body = trigger(api, task, {"options": {"lockToVersion": "19990101.1"}})
    assert response.status_code == 422
    assert "19990101.1" in body["error"]


def test_idempotency_key_returns_the_cached_run(api, task):
    _first, a = trigger(
        api, task, {"payload": 1, "options": {"idempotencyKey": "once"}}
    )
    _second, b = trigger(
        api, task, {"payload": 2, "options": {"idempotencyKey": "once"}}
    )
    assert a["isCached"] is False and b["isCached"] is True
    assert a["id"] == b["id"]
    assert Run.objects.count() == 1


def test_legacy_idempotency_key_header(api, task):
    _, a = trigger(api, task, {"payload": 1}, **{"idempotency-key": "hdr"})
    _, b = trigger(api, task, {"payload": 1}, **{"idempotency-key": "hdr"})
    assert a["id"] == b["id"] and b["isCached"] is True


def test_eleven_tags_is_422_with_the_trigger_dev_message(api, task):
    response, body = trigger(
        api, task, {"options": {"tags": [f"t{i}" for i in range(11)]}}
    )
    assert response.status_code == 422
    assert body == {"error": "Runs can only have 10 tags, you're trying to set 11."}
    assert response["x-should-retry"] == "false"


def test_tag_over_128_characters_is_400(api, task):
    response, body = trigger(api, task, {"options": {"tags": ["x" * 129]}})
    assert response.status_code == 400
    assert 'at "options.tags"' in body["error"]


def test_metadata_over_256_kib_is_413(api, task):
    response, body = trigger(
        api, task, {"options": {"metadata": {"blob": "x" * 262_144}}}
    )
    assert response.status_code == 413
    assert body == {"error": "Metadata exceeds maximum size of 262144 bytes"}
    assert Run.objects.count() == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"machine": "huge"}, 'at "options.machine"'),
        ({"ttl": -5}, 'at "options.ttl"'),
        ({"ttl": "soon"}, "Invalid duration"),
        ({"maxAttempts": 0}, 'at "options.maxAttempts"'),
        ({"queue": "emails"}, 'at "options.queue"'),
        ({"payloadType": "application/store"}, "non-empty string"),
    ],
)
def test_bad_options_are_400(api, task, options, message):
    response, body = trigger(api, task, {"options": options})
    assert response.status_code == 400, body
    assert message in body["error"]
    assert Run.objects.count() == 0


def test_unknown_parent_is_422(api, task):
    response, body = trigger(api, task, {"options": {"parentRunId": "run_nope"}})
    assert response.status_code == 422
    assert "run_nope" in body["error"]


def test_past_or_garbage_delay_runs_now_like_trigger_dev(api, task):
    _, body = trigger(api, task, {"options": {"delay": "2001-01-01T00:00:00Z"}})
    assert Run.objects.get(friendly_id=body["id"]).status == "QUEUED"


def test_a_task_without_a_deployment_waits_for_a_version(api):
    _, body = trigger(api, "not-deployed-yet", {"payload": {}})
    assert Run.objects.get(friendly_id=body["id"]).status == "PENDING_VERSION"


def test_public_token_may_trigger_only_its_tasks(dev, task):
    claims = tokens.public_claims(dev.pk, [f"trigger:tasks:{task}"])
    client = ApiClient(tokens.sign(claims, dev.api_key))
    assert client.post(f"/api/v1/tasks/{task}/trigger", {}).status_code == 200
    assert client.post("/api/v1/tasks/other/trigger", {}).status_code == 403


@pytest.mark.parametrize(
    ("options", "status"),
    [
        ({"delay": "99999999999999w"}, 400),
        ({"ttl": "99999999999999w"}, 400),
        ({"maxAttempts": 10**30}, 400),
        ({"priority": 1e300}, 200),  # clamped, like Trigger.dev
        ({"maxDuration": 1e300}, 200),  # clamped to the maximum
    ],
)
def test_absurd_numbers_are_refused_or_clamped_never_a_500(api, task, options, status):
    response, body = trigger(api, task, {"options": options})
    assert response.status_code == status, body
