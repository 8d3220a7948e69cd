from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from runs.models import Queue, Run
from runs.statuses import RunStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice)
    return client


def url(run, action: str) -> str:
    return f"/env/{run.environment.slug}/runs/{run.friendly_id}/{action}"


# --- cancel ------------------------------------------------------------------------


def test_cancel_from_the_row_menu_answers_with_the_row(signed_in, dev, make_run):
    run = make_run(dev)
    response = signed_in.post(
        url(run, "cancel"),
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET=f"run-{run.friendly_id}",
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.strip().startswith(f'<tr id="run-{run.friendly_id}"')
    assert "Canceled" in body and "Cancel run" not in body
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELED


def test_cancel_from_the_run_page_answers_with_its_fragments(signed_in, dev, make_run):
    run = make_run(dev)
    child = make_run(dev, parent_run_id=run.friendly_id)
    response = signed_in.post(url(run, "cancel"), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert 'id="run-header"' in body and 'hx-swap-oob="true"' in body
    assert "Canceled" in body
    assert Run.objects.get(pk=child.pk).status == RunStatus.CANCELED


def test_cancel_without_htmx_redirects_to_the_run(signed_in, dev, make_run):
    run = make_run(dev)
    response = signed_in.post(url(run, "cancel"))
    assert response.status_code == 302
    assert response["Location"] == f"/env/dev/runs/{run.friendly_id}/"


def test_cancel_leaves_a_finished_run_alone(signed_in, dev, make_run):
    run = make_run(dev)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.COMPLETED)
    signed_in.post(url(run, "cancel"), HTTP_HX_REQUEST="true")
    assert Run.objects.get(pk=run.pk).status == RunStatus.COMPLETED


def test_cancel_is_post_only_and_csrf_protected(alice, dev, make_run):
    run = make_run(dev)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get(url(run, "cancel")).status_code == 405
    assert client.post(url(run, "cancel")).status_code == 403
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED


def test_cancel_needs_access_to_the_environment(client, bob, prod, make_run):
    run = make_run(prod)
    client.force_login(bob)
    assert client.post(url(run, "cancel")).status_code == 404
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED


# --- replay ------------------------------------------------------------------------


def test_replay_dialog_is_prefilled_with_the_payload(signed_in, dev, make_run):
    run = make_run(dev, payload={"order": 7}, tags=["vip"], metadata={"seed": 1})
    body = signed_in.get(url(run, "replay"), HTTP_HX_REQUEST="true").content.decode()
    assert "<dialog" in body and "data-autoshow" in body
    assert "&quot;order&quot;: 7" in body
    assert "&quot;seed&quot;: 1" in body
    assert 'value="vip"' in body
    assert '<option value="dev" selected>' in body


def test_replay_with_an_edited_payload_creates_a_linked_run(signed_in, dev, make_run):
    run = make_run(dev, payload={"order": 7}, tags=["vip"])
    response = signed_in.post(
        url(run, "replay"),
        {
            "environment": "dev",
            "payload": '{"order": 8, "note": "retry"}',
            "metadata": '{"attempt": "manual"}',
            "tags": "vip, manual",
            "version": "current",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    new = Run.objects.exclude(pk=run.pk).get(replayed_from=run)
    assert response["HX-Redirect"] == f"/env/dev/runs/{new.friendly_id}/"
    assert json.loads(new.payload) == {"order": 8, "note": "retry"}
    assert new.metadata == {"attempt": "manual"}
    assert new.tags == ["manual", "vip"]
    assert new.task_identifier == run.task_identifier


def test_replay_unchanged_keeps_the_original_packet(signed_in, dev, make_run):
    run = make_run(dev, payload={"b": 1, "a": 2})
    body = signed_in.get(url(run, "replay"), HTTP_HX_REQUEST="true").content.decode()
    shown = body.split('name="payload"')[1].split(">", 1)[1].split("</textarea>")[0]
    import html

    signed_in.post(
        url(run, "replay"),
        {
            "environment": "dev",
            "payload": html.unescape(shown),
            "metadata": "{}",
            "version": "current",
        },
    )
    new = Run.objects.get(replayed_from=run)
    assert new.payload == run.payload


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("payload", '{"order": 8,', "The payload is not valid JSON"),
        ("payload", '{"a": 1}\n{"b": 2}', "line 2, column 1"),
        ("metadata", "[1, 2]", "must be a JSON object"),
        ("tags", ",".join(f"t{i}" for i in range(11)), "Runs can only have 10 tags"),
        ("delay", "yesterday", "Invalid delay"),
        ("max_attempts", "0", "greater than or equal to 1"),
        ("ttl", "soon", "Invalid duration"),
        ("priority", "-5", "Priority must be a number of seconds"),
        ("queue", "nope", "Select a valid choice"),
        ("idempotency_key_ttl", "1h", "Set an idempotency key to give it a TTL"),
        ("concurrency_key", "k" * 256, "at most 255 characters"),
    ],
)
def test_replay_rejects_bad_input_in_the_dialog(
    signed_in, dev, make_run, field, value, message
):
    run = make_run(dev)
    data = {
        "environment": "dev",
        "payload": '{"n": 1}',
        "metadata": "{}",
        "version": "current",
    }
    data[field] = value
    response = signed_in.post(url(run, "replay"), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Run.objects.filter(replayed_from=run).exists()
    assert Run.objects.count() == 1


def test_replay_dialog_offers_the_original_queue_ttl_priority_and_keys(
    signed_in, dev, make_run
):
    Queue.objects.create(environment=dev, name="bulk", paused=True)
    run = make_run(
        dev, queue="orders", ttl="30m", priority=90, concurrency_key="acct-1"
    )
    body = signed_in.get(url(run, "replay"), HTTP_HX_REQUEST="true").content.decode()
    assert '<option value="orders" selected>' in body
    assert '<option value="bulk">bulk (paused)</option>' in body
    assert 'name="ttl" value="30m"' in body
    assert 'name="priority" value="90"' in body
    assert 'name="concurrency_key" value="acct-1"' in body
    assert 'name="idempotency_key" value=""' in body  # a replay is a new run
    assert 'placeholder="10m (dev default)"' in body


def test_replay_with_queue_ttl_priority_and_keys(signed_in, dev, make_run):
    Queue.objects.create(environment=dev, name="bulk")
    run = make_run(dev, concurrency_key="acct-1")
    data = {
        "environment": "dev",
        "payload": '{"n": 1}',
        "metadata": "{}",
        "version": "current",
        "queue": "bulk",
        "ttl": "1h",
        "priority": "2m",
        "concurrency_key": "",
        "idempotency_key": "replay-1",
        "idempotency_key_ttl": "1d",
    }
    signed_in.post(url(run, "replay"), data, HTTP_HX_REQUEST="true")
    new = Run.objects.get(replayed_from=run)
    assert (new.queue, new.ttl, new.priority_ms) == ("bulk", "1h", 120_000)
    assert new.concurrency_key is None
    assert new.idempotency_key_user == "replay-1"
    # the same key again: the replay it made is returned, no new run
    response = signed_in.post(url(run, "replay"), data, HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == f"/env/dev/runs/{new.friendly_id}/"
    assert Run.objects.filter(replayed_from=run).count() == 1


def test_replay_into_another_environment(signed_in, dev, prod, make_run, deploy):
    run = make_run(dev, payload={"n": 1})
    deploy(prod, run.task_identifier)
    response = signed_in.post(
        url(run, "replay"),
        {
            "environment": "prod",
            "payload": '{"n": 2}',
            "metadata": "{}",
            "version": "current",
        },
    )
    new = Run.objects.get(environment=prod)
    assert response["Location"] == f"/env/prod/runs/{new.friendly_id}/"
    assert json.loads(new.payload) == {"n": 2}


def test_replay_cannot_target_an_environment_the_user_cannot_see(
    client, bob, dev, make_run
):
    run = make_run(dev)
    client.force_login(bob)
    response = client.post(
        url(run, "replay"),
        {
            "environment": "prod",
            "payload": "{}",
            "metadata": "{}",
            "version": "current",
        },
        HTTP_HX_REQUEST="true",
    )
    assert "Select a valid choice" in response.content.decode()
    assert Run.objects.count() == 1


# --- reschedule --------------------------------------------------------------------


def test_reschedule_a_delayed_run(signed_in, dev, make_run):
    run = make_run(dev, delay="1h")
    response = signed_in.post(
        url(run, "reschedule"), {"delay": "3h"}, HTTP_HX_REQUEST="true"
    )
    assert response["HX-Redirect"] == f"/env/dev/runs/{run.friendly_id}/"
    run.refresh_from_db()
    assert run.delay_until - timezone.now() > timedelta(hours=2, minutes=59)


@pytest.mark.parametrize("delay", ["2001-01-01T00:00:00Z", "soon", ""])
def test_reschedule_rejects_bad_delays(signed_in, dev, make_run, delay):
    run = make_run(dev, delay="1h")
    before = run.delay_until
    response = signed_in.post(
        url(run, "reschedule"), {"delay": delay}, HTTP_HX_REQUEST="true"
    )
    assert 'class="field-error"' in response.content.decode()
    run.refresh_from_db()
    assert run.delay_until == before


def test_reschedule_refuses_runs_that_are_not_delayed(signed_in, dev, make_run):
    run = make_run(dev)
    response = signed_in.post(
        url(run, "reschedule"), {"delay": "1h"}, HTTP_HX_REQUEST="true"
    )
    assert "Cannot reschedule a run that is not delayed" in response.content.decode()
