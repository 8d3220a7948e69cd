"""The trigger endpoint reads no environment row first: its statement checks the key
and stores the request receipt with the run. These tests hold it to the same answers
as every other endpoint: a key changed by another process fails at once (whatever
the body), a retried request gets its first answer, and nothing is half-written."""

from __future__ import annotations

import threading

import pytest

from runs.api import tokens
from runs.models import Environment, IdempotentRequest, Run
from tests.api.conftest import ApiClient
from tests.concurrency import run_concurrently

pytestmark = pytest.mark.django_db

TRIGGER = "/api/v1/tasks/a/trigger"


def _regenerate_elsewhere(environment: Environment) -> None:
    """What another server process does: a new key in the database, unseen here."""
    Environment.objects.filter(pk=environment.pk).update(api_key="tr_dev_" + "n" * 24)


@pytest.mark.parametrize(
    "body",
    [
        {"payload": {"n": 1}},
        {"options": {"tags": 5}},
        {"options": {"tags": [str(i) for i in range(11)]}},
    ],
    ids=["valid", "invalid", "rejected"],
)
def test_a_key_changed_by_another_process_fails_every_trigger_at_once(
    api, dev, deploy, body
):
    deploy(dev, "a")
    assert api.post(TRIGGER, {"payload": 1}).status_code == 200  # key cached here
    _regenerate_elsewhere(dev)
    for headers in ({}, {"x-trigger-request-idempotency-key": "k"}):
        response = api.post(TRIGGER, body, **headers)
        assert response.status_code == 401, response.content
        assert response.json() == {"error": "Invalid or Missing API key"}
    assert Run.objects.count() == 1
    assert not IdempotentRequest.objects.exists()


def test_a_public_token_signed_with_a_changed_key_cannot_trigger(dev, deploy):
    deploy(dev, "a")
    claims = tokens.public_claims(dev.pk, ["trigger:tasks:a"])
    client = ApiClient(tokens.sign(claims, dev.api_key))
    assert client.post(TRIGGER, {"payload": 1}).status_code == 200
    _regenerate_elsewhere(dev)
    assert client.post(TRIGGER, {"payload": 1}).status_code == 401
    assert Run.objects.count() == 1


def test_the_new_key_works_at_once(api, dev, deploy):
    deploy(dev, "a")
    assert api.post(TRIGGER, {}).status_code == 200
    _regenerate_elsewhere(dev)
    dev.refresh_from_db()
    assert ApiClient(dev.api_key).post(TRIGGER, {}).status_code == 200


def test_a_retry_gets_the_first_answer_even_if_it_would_now_fail(api, dev, deploy):
    deploy(dev, "a")
    headers = {"x-trigger-request-idempotency-key": "retry-1"}
    first = api.post(TRIGGER, {"payload": 1}, **headers)
    again = api.post(
        TRIGGER, {"options": {"tags": [str(i) for i in range(11)]}}, **headers
    )
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again["x-trigger-request-idempotent-replay"] == "true"
    assert again["x-trigger-jwt"]
    assert Run.objects.count() == 1


def test_a_cached_trigger_stores_its_cached_answer(api, dev, deploy):
    deploy(dev, "a")
    options = {"options": {"idempotencyKey": "once"}}
    first = api.post(TRIGGER, options, **{"x-trigger-request-idempotency-key": "r1"})
    second = api.post(TRIGGER, options, **{"x-trigger-request-idempotency-key": "r2"})
    assert second.json() == {"id": first.json()["id"], "isCached": True}
    stored = IdempotentRequest.objects.get(key="r2")
    assert stored.body == second.json()
    replayed = api.post(TRIGGER, options, **{"x-trigger-request-idempotency-key": "r2"})
    assert replayed.json() == second.json()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_attempts_with_one_request_key_create_one_run(dev, deploy):
    deploy(dev, "a")
    key = dev.api_key
    answers: list[dict] = []
    start = threading.Barrier(4)

    def attempt(_: int) -> None:
        start.wait(10)
        response = ApiClient(key).post(
            TRIGGER, {"payload": 1}, **{"x-trigger-request-idempotency-key": "race"}
        )
        assert response.status_code == 200, response.content
        answers.append(response.json())

    errors = run_concurrently(attempt, 4)
    assert errors == []
    assert len({answer["id"] for answer in answers}) == 1 and len(answers) == 4
    assert Run.objects.filter(environment=dev).count() == 1
    assert IdempotentRequest.objects.filter(environment=dev).count() == 1
