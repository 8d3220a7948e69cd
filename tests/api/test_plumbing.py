"""Authentication, errors, limits, rate limiting, request idempotency, CSRF."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from runs.api import tokens
from runs.models import IdempotentRequest, Run
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db


def test_missing_or_wrong_key_is_401_without_retry(dev):
    for client in (ApiClient(""), ApiClient("tr_dev_wrongwrongwrongwrongwron")):
        response = client.get("/api/v1/runs")
        assert response.status_code == 401
        assert response.json() == {"error": "Invalid or Missing API key"}
        assert response["x-should-retry"] == "false"


def test_a_regenerated_key_stops_working_at_once(dev, api, deploy):
    assert api.get("/api/v1/runs").status_code == 200
    old = dev.api_key
    dev.regenerate_api_key()
    assert ApiClient(old).get("/api/v1/runs").status_code == 401
    assert ApiClient(dev.api_key).get("/api/v1/runs").status_code == 200


def test_the_key_selects_the_environment_and_other_environments_are_404(
    dev, prod, api, prod_api, make_run
):
    run = make_run(prod, task="a")
    assert prod_api.get(f"/api/v3/runs/{run.friendly_id}").status_code == 200
    for response in (
        api.get(f"/api/v3/runs/{run.friendly_id}"),
        api.post(f"/api/v2/runs/{run.friendly_id}/cancel"),
        api.post(f"/api/v1/runs/{run.friendly_id}/replay"),
        api.put(f"/api/v1/runs/{run.friendly_id}/metadata", {"metadata": {"a": 1}}),
        api.get(f"/api/v1/runs/{run.friendly_id}/metadata"),
        api.post(f"/api/v1/runs/{run.friendly_id}/tags", {"tags": ["x"]}),
        api.post(f"/api/v1/runs/{run.friendly_id}/reschedule", {"delay": "1h"}),
    ):
        assert response.status_code == 404, response.content
        assert response["x-should-retry"] == "false"
    assert api.get("/api/v1/runs").json()["data"] == []
    run.refresh_from_db()
    assert run.status == "QUEUED" and run.metadata == {} and run.tags == []


def test_public_token_is_scoped(dev, make_run):
    run = make_run(dev, task="a")
    other = make_run(dev, task="b")
    claims = tokens.public_claims(dev.pk, [f"read:runs:{run.friendly_id}"])
    client = ApiClient(tokens.sign(claims, dev.api_key))
    assert client.get(f"/api/v3/runs/{run.friendly_id}").status_code == 200
    denied = client.get(f"/api/v3/runs/{other.friendly_id}")
    assert denied.status_code == 403
    assert client.get("/api/v1/runs").status_code == 403
    assert client.post(f"/api/v2/runs/{run.friendly_id}/cancel").status_code == 403
    # secret-key-only routes refuse public tokens
    assert client.post(f"/api/v1/runs/{run.friendly_id}/replay").status_code == 401


def test_public_token_signed_by_the_sdk_without_sub_is_accepted(dev, make_run):
    run = make_run(dev, task="a")
    claims = tokens.public_claims(dev.pk, ["read:runs"])
    del claims["sub"], claims["pub"]
    client = ApiClient(tokens.sign(claims, dev.api_key))
    assert client.get(f"/api/v3/runs/{run.friendly_id}").status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        {"exp": 1},
        {"iss": "https://elsewhere.example"},
        {"pub": False},
    ],
)
def test_expired_or_foreign_tokens_are_401(dev, make_run, change):
    run = make_run(dev, task="a")
    claims = {**tokens.public_claims(dev.pk, ["read:all"]), **change}
    response = ApiClient(tokens.sign(claims, dev.api_key)).get(
        f"/api/v3/runs/{run.friendly_id}"
    )
    assert response.status_code == 401


def test_token_signed_with_another_environments_key_is_401(dev, prod, make_run):
    run = make_run(dev, task="a")
    claims = tokens.public_claims(dev.pk, ["read:all"])
    response = ApiClient(tokens.sign(claims, prod.api_key)).get(
        f"/api/v3/runs/{run.friendly_id}"
    )
    assert response.status_code == 401


def test_wrong_method_is_405(api):
    response = api.get("/api/v1/tasks/a/trigger")
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_malformed_and_empty_bodies_are_400(api, deploy, dev):
    deploy(dev, "a")
    bad = api.post("/api/v1/tasks/a/trigger", raw="{not json")
    assert bad.status_code == 400 and bad.json() == {"error": "Invalid JSON"}
    empty = api.post("/api/v1/runs/run_missing/tags")
    assert empty.status_code == 404
    wrong = api.post("/api/v1/tasks/a/trigger", {"options": {"tags": 5}})
    assert wrong.status_code == 400
    body = wrong.json()
    assert body["error"].startswith("Validation error:")
    assert 'at "options.tags"' in body["error"]
    assert body["details"][0]["path"] == ["options", "tags"]
    assert wrong["x-should-retry"] == "false"
    assert Run.objects.count() == 0


def test_content_length_over_the_limit_is_413_before_reading(api, settings):
    settings.RUNWATCH_PAYLOAD_MAX_BYTES = 1000
    response = api.post("/api/v1/tasks/a/trigger", {"payload": "x" * 200_000})
    assert response.status_code == 413
    assert response.json() == {"error": "Request body too large"}
    assert Run.objects.count() == 0


def test_rate_limit_headers_and_429(api, settings):
    settings.RUNWATCH_API_RATE_LIMIT = 3
    settings.RUNWATCH_API_RATE_REFILL_PER_SECOND = 0.01
    first = api.get("/api/v1/runs")
    assert first["x-ratelimit-limit"] == "3"
    assert int(first["x-ratelimit-remaining"]) == 2
    assert int(first["x-ratelimit-reset"]) > 1_600_000_000_000  # unix ms
    api.get("/api/v1/runs")
    api.get("/api/v1/runs")
    limited = api.get("/api/v1/runs")
    assert limited.status_code == 429
    assert limited["Content-Type"] == "application/problem+json"
    assert limited.json()["title"] == "Rate Limit Exceeded"
    assert limited["x-ratelimit-remaining"] == "0"
    # another key has its own bucket
    other = ApiClient("tr_dev_someoneelse000000000000")
    assert other.get("/api/v1/runs").status_code == 401


def test_request_idempotency_replays_the_first_answer(api, dev, deploy):
    deploy(dev, "a")
    headers = {"x-trigger-request-idempotency-key": "7f1c2d3e-retry"}
    first = api.post("/api/v1/tasks/a/trigger", {"payload": {"n": 1}}, **headers)
    second = api.post("/api/v1/tasks/a/trigger", {"payload": {"n": 1}}, **headers)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert second["x-trigger-jwt"]
    assert Run.objects.count() == 1
    assert IdempotentRequest.objects.filter(environment=dev).count() == 1


def test_failed_requests_are_not_stored_for_idempotency(api, dev, deploy):
    deploy(dev, "a")
    headers = {"x-trigger-request-idempotency-key": "k-1"}
    bad = api.post(
        "/api/v1/tasks/a/trigger",
        {"options": {"tags": [str(i) for i in range(11)]}},
        **headers,
    )
    assert bad.status_code == 422
    good = api.post("/api/v1/tasks/a/trigger", {"payload": 1}, **headers)
    assert good.status_code == 200
    assert Run.objects.count() == 1


def test_api_is_csrf_exempt(dev, deploy):
    deploy(dev, "a")
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/api/v1/tasks/a/trigger",
        json.dumps({"payload": {}}),
        content_type="application/json",
        headers={"authorization": f"Bearer {dev.api_key}"},
    )
    assert response.status_code == 200


def test_dashboard_is_not_csrf_exempt(alice, dev, make_run):
    run = make_run(dev, task="a")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(f"/env/dev/runs/{run.friendly_id}/cancel")
    assert response.status_code == 403


def test_nan_and_absurd_nesting_are_invalid_json(api, dev, deploy):
    deploy(dev, "a")
    nan = api.post("/api/v1/tasks/a/trigger", raw='{"payload": NaN}')
    assert nan.status_code == 400 and nan.json() == {"error": "Invalid JSON"}
    deep = api.post(
        "/api/v1/tasks/a/trigger",
        raw='{"payload": ' + "[" * 100_000 + "]" * 100_000 + "}",
    )
    assert deep.status_code == 400
    assert Run.objects.count() == 0


def test_unhandled_errors_are_a_json_500(api, dev, monkeypatch):
    from runs.api.views import runs as run_views

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(run_views, "paginate", explode)
    response = api.get("/api/v1/runs")
    assert response.status_code == 500
    assert response.json() == {"error": "Internal Server Error"}


def test_expired_request_idempotency_answers_are_not_replayed_and_get_pruned(
    api, dev, deploy
):
    from datetime import timedelta

    from django.utils import timezone

    from runs.receipts import prune_expired

    deploy(dev, "a")
    headers = {"x-trigger-request-idempotency-key": "old"}
    first = api.post("/api/v1/tasks/a/trigger", {}, **headers).json()
    IdempotentRequest.objects.update(created_at=timezone.now() - timedelta(hours=2))
    second = api.post("/api/v1/tasks/a/trigger", {}, **headers).json()
    assert second["id"] != first["id"]
    IdempotentRequest.objects.update(created_at=timezone.now() - timedelta(hours=2))
    assert prune_expired() == 1
    assert not IdempotentRequest.objects.exists()


def test_cors_preflight_and_headers(api):
    preflight = Client().options("/api/v3/runs/run_x")
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert "authorization" in preflight["Access-Control-Allow-Headers"]
    assert preflight["Access-Control-Allow-Methods"] == "GET, OPTIONS"
    answer = api.get("/api/v1/runs")
    assert answer["Access-Control-Allow-Origin"] == "*"
    assert "x-trigger-jwt" in answer["Access-Control-Expose-Headers"]
