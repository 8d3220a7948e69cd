"""Run test: the form's values reach the run through runs.triggering.trigger."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from runs.models import Queue, Run, RunTag
from runs.statuses import RunStatus
from tests.testpage.conftest import run_test, task_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice)
    return client


def the_run(response) -> Run:
    run = Run.objects.get()
    assert response.status_code == 302
    assert (
        response["Location"] == f"/env/{run.environment.slug}/runs/{run.friendly_id}/"
    )
    return run


def test_a_blank_form_runs_the_task_with_an_empty_object(signed_in, adder):
    run = the_run(run_test(signed_in, payload=""))
    assert run.is_test
    assert run.task_identifier == "add"
    assert json.loads(run.payload) == {}
    assert run.status == RunStatus.QUEUED
    assert run.queue == "task/add"  # the task's own
    assert run.ttl == "10m"  # dev's default, as for any trigger


def test_every_option_is_reflected_on_the_run(signed_in, dev, deploy):
    older = deploy(dev, "add")
    deploy(dev, "add", "noop")  # a newer current deployment
    Queue.objects.create(environment=dev, name="bulk", concurrency_limit=2)
    before = timezone.now()
    response = run_test(
        signed_in,
        payload='{\n  "a": 1,\n  "big": 12345678901234567890\n}',
        metadata='{"progress": 0, "source": "test page"}',
        version=older.version,
        queue="bulk",
        machine="medium-2x",
        tags=["vip", "org:acme, user_1"],
        max_attempts="7",
        max_duration="5m",
        delay="1h",
        ttl="30m",
        priority="90",
        concurrency_key="tenant-9",
        idempotency_key="nightly-1",
        idempotency_key_ttl="2h",
    )
    run = the_run(response)
    assert run.is_test
    assert json.loads(run.payload) == {"a": 1, "big": 12345678901234567890}
    assert run.metadata == {"progress": 0, "source": "test page"}
    assert run.seed_metadata == run.metadata
    assert run.lock_to_version == older.version
    assert run.version == older.version
    assert run.queue == "bulk"
    assert run.machine == "medium-2x"
    assert run.tags == ["org:acme", "user_1", "vip"]
    assert set(RunTag.objects.values_list("tag", flat=True)) == set(run.tags)
    assert run.max_attempts == 7
    assert run.max_duration == 300
    assert run.status == RunStatus.DELAYED
    assert (
        before + timedelta(hours=1)
        <= run.delay_until
        <= timezone.now() + timedelta(hours=1)
    )
    assert run.ttl == "30m"
    assert run.ttl_expires_at == run.delay_until + timedelta(minutes=30)
    assert run.priority_ms == 90_000
    assert run.concurrency_key == "tenant-9"
    assert run.idempotency_key == "nightly-1"
    assert run.idempotency_key_expires_at == run.created_at + timedelta(hours=2)


def test_durations_may_be_given_in_seconds(signed_in, adder):
    run = the_run(
        run_test(signed_in, max_duration="90", ttl="120", priority="1.5", delay="")
    )
    assert run.max_duration == 90
    assert run.ttl == "2m"
    assert run.priority_ms == 1500
    assert run.status == RunStatus.QUEUED


def test_a_future_date_delays_the_run_until_then(signed_in, adder):
    when = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    run = the_run(run_test(signed_in, delay=when.isoformat()))
    assert run.status == RunStatus.DELAYED
    assert run.delay_until == when


def test_the_run_page_greets_with_a_message(signed_in, adder):
    response = run_test(signed_in)
    run = Run.objects.get()
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"Test run {run.friendly_id} created"
    ]


def test_a_held_idempotency_key_leads_to_the_existing_run(signed_in, adder):
    first = the_run(run_test(signed_in, idempotency_key="once"))
    response = run_test(signed_in, idempotency_key="once", payload='{"other": 1}')
    assert response.status_code == 302
    assert response["Location"].endswith(f"/runs/{first.friendly_id}/")
    assert Run.objects.count() == 1
    assert "already exists" in str(list(get_messages(response.wsgi_request))[-1])


def test_it_runs_in_the_environment_of_the_url(signed_in, dev, prod, deploy):
    deploy(dev, "add")
    deploy(prod, "add")
    run = the_run(run_test(signed_in, env="prod"))
    assert run.environment == prod
    assert run.ttl is None  # no default TTL outside dev


def test_the_form_offers_queues_versions_and_machines(signed_in, dev, deploy):
    older = deploy(dev, "add")
    current = deploy(dev, "add", "noop")
    Queue.objects.create(environment=dev, name="paused-one", paused=True)
    form = signed_in.get(task_url()).context["form"]
    assert form.fields["version"].choices == [
        ("", f"Current ({current.version})"),
        (older.version, older.version),
    ]
    queues = dict(form.fields["queue"].choices)
    assert queues[""] == "Default (task/add)"
    assert queues["paused-one"] == "paused-one (paused)"
    assert "task/noop" in queues
    assert [value for value, _ in form.fields["machine"].choices][:3] == [
        "",
        "micro",
        "small-1x",
    ]
