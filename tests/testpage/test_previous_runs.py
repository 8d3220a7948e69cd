"""Previous test runs: the last 20 of this task here; clicking one loads it into the form."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.models import Run
from tests.testpage.conftest import task_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, alice, adder):
    client.force_login(alice)
    return client


def test_the_list_holds_the_last_20_test_runs_of_this_task_only(
    signed_in, dev, prod, make_run, deploy
):
    deploy(prod, "add")
    tests = [make_run(dev, task="add", test=True) for _ in range(22)]
    make_run(dev, task="add")  # not a test
    make_run(dev, task="noop", test=True)  # another task
    make_run(prod, task="add", test=True)  # another environment
    listed = signed_in.get(task_url()).context["previous_runs"]
    assert [r.friendly_id for r in listed] == [r.friendly_id for r in tests[::-1][:20]]


def test_each_previous_run_shows_its_status_and_links(signed_in, dev, make_run):
    run = make_run(dev, task="add", test=True, tags=["smoke"])
    body = signed_in.get(task_url()).content.decode()
    assert f'href="{task_url()}?run={run.friendly_id}"' in body
    assert f'href="/env/dev/runs/{run.friendly_id}/"' in body
    assert 'class="badge badge-queued"' in body


def test_clicking_a_run_loads_its_payload_metadata_and_options(
    signed_in, dev, make_run, deploy
):
    older = deploy(dev, "add")
    deploy(dev, "add", "noop")
    run = make_run(
        dev,
        task="add",
        payload={"a": 1, "nested": {"b": [1, 2]}},
        test=True,
        metadata={"seed": True},
        tags=["x", "y"],
        queue="special",
        machine="large-1x",
        max_attempts=5,
        max_duration=120,
        delay="90m",
        ttl="1h",
        priority=2.5,
        concurrency_key="ck",
        idempotency_key="do-not-reuse",
        lock_to_version=older.version,
    )
    Run.objects.filter(pk=run.pk).update(metadata={"seed": True, "progress": 0.5})
    response = signed_in.get(f"{task_url()}?run={run.friendly_id}")
    assert response.status_code == 200
    form = response.context["form"]
    assert json.loads(form["payload"].value()) == {"a": 1, "nested": {"b": [1, 2]}}
    assert form["payload"].value().startswith('{\n  "a": 1')  # pretty
    assert json.loads(form["metadata"].value()) == {"seed": True}  # as triggered
    assert form["tags"].value() == ["x", "y"]
    assert form["queue"].value() == "special"
    assert ("special", "special") in form.fields["queue"].choices
    assert form["machine"].value() == "large-1x"
    assert form["max_attempts"].value() == "5"
    assert form["max_duration"].value() == "120"
    assert form["delay"].value() == "1h30m"
    assert form["ttl"].value() == "1h"
    assert form["priority"].value() == "2.5"
    assert form["concurrency_key"].value() == "ck"
    assert form["version"].value() == older.version
    assert not form["idempotency_key"].value()  # would return that same run
    body = response.content.decode()
    assert "Loaded from test run" in body
    assert "is-loaded" in body


def test_a_loaded_run_can_be_run_again_unchanged(signed_in, dev, make_run):
    run = make_run(dev, task="add", test=True, payload={"a": 3}, tags=["again"])
    form = signed_in.get(f"{task_url()}?run={run.friendly_id}").context["form"]
    data = {name: form[name].value() or "" for name in form.fields}
    response = signed_in.post(task_url(), data)
    assert response.status_code == 302
    again = Run.objects.exclude(pk=run.pk).get()
    assert json.loads(again.payload) == {"a": 3}
    assert again.tags == ["again"]
    assert again.is_test


def test_loading_with_htmx_answers_only_the_workspace(signed_in, dev, make_run):
    run = make_run(dev, task="add", test=True)
    response = signed_in.get(
        f"{task_url()}?run={run.friendly_id}", headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="test-workspace"')
    assert "<html" not in body


def test_a_run_of_another_task_or_environment_is_not_found(
    signed_in, dev, prod, make_run, deploy
):
    deploy(prod, "add")
    other_task = make_run(dev, task="noop", test=True)
    other_env = make_run(prod, task="add", test=True)
    for run in (other_task, other_env):
        assert signed_in.get(f"{task_url()}?run={run.friendly_id}").status_code == 404


def test_the_page_takes_the_same_number_of_queries_however_much_it_lists(
    signed_in, dev, make_run
):
    from runs.models import TestTemplate

    make_run(dev, task="add", test=True, tags=["a"])
    TestTemplate.objects.create(environment=dev, task_identifier="add", name="t0")
    with CaptureQueriesContext(connection) as few:
        assert signed_in.get(task_url()).status_code == 200
    for n in range(15):
        make_run(dev, task="add", test=True, tags=["a", "b"], delay=f"{n + 1}m")
        TestTemplate.objects.create(
            environment=dev, task_identifier="add", name=f"t{n + 1}"
        )
    with CaptureQueriesContext(connection) as many:
        signed_in.get(task_url())
    assert len(many) == len(few)


def test_loaded_delay_rounds_to_whole_seconds(signed_in, dev, make_run):
    run = make_run(dev, task="add", test=True, delay="45s")
    Run.objects.filter(pk=run.pk).update(
        delay_until=run.created_at + timedelta(seconds=44.6)
    )
    form = signed_in.get(f"{task_url()}?run={run.friendly_id}").context["form"]
    assert form["delay"].value() == "45s"


def test_the_form_starts_from_the_last_test_runs_payload_and_metadata(
    signed_in, dev, make_run
):
    make_run(dev, task="add", test=True, payload={"old": 1})
    last = make_run(
        dev, task="add", test=True, payload={"new": 2}, metadata={"m": 1}, tags=["t"]
    )
    make_run(dev, task="add", payload={"not": "a test"})
    response = signed_in.get(task_url())
    form = response.context["form"]
    assert json.loads(form["payload"].value()) == {"new": 2}
    assert json.loads(form["metadata"].value()) == {"m": 1}
    assert form["tags"].value() == []  # options start from the defaults
    assert response.context["prefilled_from"] == last
    assert "Payload and metadata of the last test run" in response.content.decode()

    blank = signed_in.get(f"{task_url()}?blank").context["form"]
    assert blank["payload"].value() == "{}"
    assert blank["metadata"].value() == "{}"


def test_without_test_runs_the_form_starts_blank(signed_in, dev, make_run):
    make_run(dev, task="add", payload={"not": "a test"})
    response = signed_in.get(task_url())
    assert response.context["form"]["payload"].value() == "{}"
    assert response.context["prefilled_from"] is None
