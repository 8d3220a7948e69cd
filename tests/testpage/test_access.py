"""Environment isolation and CSRF on every action of the Test page."""

from __future__ import annotations

import pytest
from django.test import Client

from runs.models import Run, TestTemplate
from tests.testpage.conftest import form_data, run_test, task_url

pytestmark = pytest.mark.django_db


def test_a_task_is_offered_only_where_the_current_deployment_has_it(
    client, alice, dev, prod, envs, deploy
):
    deploy(dev, "add", "noop")
    deploy(prod, "noop")
    deploy(envs["staging"], "add")
    deploy(envs["staging"], "noop")  # staging's current deployment dropped "add"
    client.force_login(alice)

    listed = [t.slug for t in client.get("/env/prod/test/").context["tasks"]]
    assert listed == ["noop"]
    assert client.get(task_url("prod")).status_code == 404
    assert client.get(task_url("staging")).status_code == 404
    assert run_test(client, env="prod").status_code == 404
    assert run_test(client, env="staging").status_code == 404
    assert not Run.objects.exists()

    choices = client.get(task_url("dev")).context["environment_choices"]
    assert [(env.slug, offered) for env, offered in choices] == [
        ("dev", True),
        ("staging", False),
        ("prod", False),
    ]


def test_the_task_list_searches_the_current_deployment(client, alice, dev, deploy):
    deploy(dev, "send-email", "resize-image", "send-sms")
    client.force_login(alice)
    response = client.get("/env/dev/test/?q=SEND")
    assert [t.slug for t in response.context["tasks"]] == ["send-email", "send-sms"]
    partial = client.get("/env/dev/test/?q=resize", headers={"HX-Request": "true"})
    body = partial.content.decode()
    assert body.lstrip().startswith('<div id="test-task-list"')
    assert "resize-image" in body and "send-email" not in body


def test_an_environment_without_a_deployment_says_how_to_get_one(client, alice, dev):
    client.force_login(alice)
    response = client.get("/env/dev/test/")
    assert response.status_code == 200
    assert "No deployment in Development yet" in response.content.decode()


def test_the_side_navigation_leads_to_the_test_page(client, alice, dev):
    client.force_login(alice)
    body = client.get("/env/dev/runs/").content.decode()
    assert 'href="/env/dev/test/"' in body


def test_anonymous_users_are_sent_to_sign_in(client, dev, deploy):
    deploy(dev, "add")
    for url in ("/env/dev/test/", task_url()):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    response = run_test(client)
    assert response.status_code == 302
    assert not Run.objects.exists()


def test_a_user_without_access_to_an_environment_gets_404_everywhere(
    client, bob, dev, prod, deploy
):
    deploy(dev, "add")
    deploy(prod, "add")
    template = TestTemplate.objects.create(
        environment=prod, task_identifier="add", name="Prod"
    )
    client.force_login(bob)
    assert client.get("/env/dev/test/").status_code == 200
    assert client.get(task_url("dev")).status_code == 200
    base = task_url("prod")
    assert client.get("/env/prod/test/").status_code == 404
    assert client.get(base).status_code == 404
    assert run_test(client, env="prod").status_code == 404
    save = form_data(template_name="Mine")
    assert client.post(f"{base}templates/", save).status_code == 404
    assert (
        client.post(f"{base}templates/{template.pk}/rename", {"name": "x"}).status_code
        == 404
    )
    assert client.post(f"{base}templates/{template.pk}/delete").status_code == 404
    assert not Run.objects.exists()
    assert list(TestTemplate.objects.values_list("name", flat=True)) == ["Prod"]


def test_bob_is_offered_only_the_environments_he_may_see(client, bob, dev, deploy):
    deploy(dev, "add")
    client.force_login(bob)
    choices = client.get(task_url("dev")).context["environment_choices"]
    assert [env.slug for env, _ in choices] == ["dev"]


@pytest.fixture
def csrf_client(alice, dev, deploy) -> Client:
    deploy(dev, "add")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    return client


def test_every_action_requires_the_csrf_token(csrf_client, dev):
    template = TestTemplate.objects.create(
        environment=dev, task_identifier="add", name="Keep"
    )
    base = task_url()
    actions = [
        (base, form_data()),
        (f"{base}templates/", form_data(template_name="New")),
        (f"{base}templates/{template.pk}/rename", {"name": "Renamed"}),
        (f"{base}templates/{template.pk}/delete", {}),
    ]
    for url, data in actions:
        assert csrf_client.post(url, data).status_code == 403, url
    assert not Run.objects.exists()
    assert list(TestTemplate.objects.values_list("name", flat=True)) == ["Keep"]


def test_with_the_csrf_token_the_same_actions_work(csrf_client, dev):
    page = csrf_client.get(task_url())
    token = page.cookies["csrftoken"].value
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    response = csrf_client.post(task_url(), form_data(csrfmiddlewaretoken=token))
    assert response.status_code == 302
    assert Run.objects.count() == 1
    template = TestTemplate.objects.create(
        environment=dev, task_identifier="add", name="Old"
    )
    rename = csrf_client.post(
        f"{task_url()}templates/{template.pk}/rename",
        {"name": "New"},
        headers={"X-CSRFToken": token, "HX-Request": "true"},
    )
    assert rename.status_code == 200


def test_the_pages_connect_to_the_live_feed_for_the_header_counters(
    client, alice, dev, deploy
):
    deploy(dev, "add")
    client.force_login(alice)
    for url in ("/env/dev/test/", task_url()):
        assert f'ws-connect="/ws{url}"' in client.get(url).content.decode()
