"""Templates: save the form under a name (per task and environment), load, rename, delete."""

from __future__ import annotations

import json

import pytest

from runs import models
from tests.testpage.conftest import form_data, task_url

pytestmark = pytest.mark.django_db

Template = models.TestTemplate


@pytest.fixture
def signed_in(client, alice, adder):
    client.force_login(alice)
    return client


def save(client, name: str, env: str = "dev", task: str = "add", **fields):
    data = form_data(**fields)
    data["template_name"] = name
    return client.post(f"/env/{env}/test/tasks/{task}/templates/", data)


def make_template(env, name: str = "Nightly", task: str = "add", **options):
    return Template.objects.create(
        environment=env,
        task_identifier=task,
        name=name,
        payload='{"a": 1}',
        metadata="{}",
        options=options,
    )


def test_saving_stores_the_form_as_typed_and_loads_it_back(signed_in, dev, alice):
    response = save(
        signed_in,
        " Nightly ",
        payload='{\n  "a": 1\n}',
        metadata='{"m": true}',
        tags=["b", "a"],
        delay="1h",
        ttl="5m",
        max_attempts="2",
        machine="micro",
        idempotency_key="k",
        idempotency_key_ttl="1d",
    )
    template = Template.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{task_url()}?template={template.pk}"
    assert template.name == "Nightly"
    assert (template.environment, template.task_identifier) == (dev, "add")
    assert template.created_by == alice
    assert template.payload == '{\n  "a": 1\n}'  # formatting kept
    assert template.metadata == '{"m": true}'
    assert template.options["tags"] == ["a", "b"]
    assert template.options["delay"] == "1h"
    assert template.options["idempotency_key_ttl"] == "1d"
    assert not models.Run.objects.exists()  # saving never triggers

    form = signed_in.get(response["Location"]).context["form"]
    assert form["payload"].value() == '{\n  "a": 1\n}'
    assert form["metadata"].value() == '{"m": true}'
    assert form["tags"].value() == ["a", "b"]
    assert form["delay"].value() == "1h"
    assert form["ttl"].value() == "5m"
    assert form["max_attempts"].value() == "2"
    assert form["machine"].value() == "micro"
    assert form["idempotency_key"].value() == "k"


def test_the_loaded_template_is_marked_and_its_name_prefilled(signed_in, dev):
    template = make_template(dev)
    body = signed_in.get(f"{task_url()}?template={template.pk}").content.decode()
    assert 'class="template-item is-loaded"' in body
    assert 'name="template_name" form="test-form" value="Nightly"' in body


def test_saving_under_an_existing_name_overwrites_it(signed_in, dev):
    template = make_template(dev)
    response = save(signed_in, "Nightly", payload='{"a": 2}')
    assert response.status_code == 302
    assert Template.objects.count() == 1
    template.refresh_from_db()
    assert json.loads(template.payload) == {"a": 2}


def test_same_name_in_another_task_or_environment_is_another_template(
    signed_in, dev, prod, deploy
):
    deploy(prod, "add")
    make_template(dev)
    save(signed_in, "Nightly", task="noop")
    save(signed_in, "Nightly", env="prod")
    assert Template.objects.count() == 3


def test_an_invalid_form_is_not_saved(signed_in):
    response = save(signed_in, "Broken", payload="{nope", delay="later")
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"payload", "delay"}
    assert "Fix the errors in the form before saving it as a template" in (
        response.content.decode()
    )
    assert not Template.objects.exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "Give the template a name"), ("x" * 101, "at most 100 characters")],
)
def test_a_template_needs_a_reasonable_name(signed_in, name, message):
    response = save(signed_in, name)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Template.objects.exists()


def test_templates_are_listed_per_task_and_environment(signed_in, dev, prod, deploy):
    deploy(prod, "add")
    make_template(dev, "Mine")
    make_template(dev, "Other task", task="noop")
    make_template(prod, "Prod one")
    templates = signed_in.get(task_url()).context["templates"]
    assert [t.name for t in templates] == ["Mine"]


def test_rename_with_htmx_answers_the_templates_panel(signed_in, dev):
    template = make_template(dev)
    response = signed_in.post(
        f"{task_url()}templates/{template.pk}/rename",
        {"name": "Weekly"},
        headers={
            "HX-Request": "true",
            "HX-Current-URL": f"http://testserver{task_url()}?template={template.pk}",
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="test-templates"')
    assert "Renamed template to “Weekly”" in body
    assert 'class="template-item is-loaded"' in body
    template.refresh_from_db()
    assert template.name == "Weekly"


def test_rename_without_javascript_redirects_with_a_message(signed_in, dev):
    template = make_template(dev)
    response = signed_in.post(
        f"{task_url()}templates/{template.pk}/rename", {"name": "Weekly"}, follow=True
    )
    assert response.redirect_chain == [(task_url(), 302)]
    assert "Renamed template to “Weekly”" in response.content.decode()


def test_rename_refuses_a_taken_or_blank_name(signed_in, dev):
    template = make_template(dev, "One")
    make_template(dev, "Two")
    url = f"{task_url()}templates/{template.pk}/rename"
    htmx = {"HX-Request": "true"}
    taken = signed_in.post(url, {"name": "Two"}, headers=htmx)
    assert taken.status_code == 400
    assert "A template named “Two” already exists" in taken.content.decode()
    blank = signed_in.post(url, {"name": "  "}, headers=htmx)
    assert "Give the template a name" in blank.content.decode()
    template.refresh_from_db()
    assert template.name == "One"


def test_delete_removes_only_that_template(signed_in, dev):
    doomed = make_template(dev, "Doomed")
    kept = make_template(dev, "Kept")
    response = signed_in.post(
        f"{task_url()}templates/{doomed.pk}/delete", headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert "Deleted template “Doomed”" in response.content.decode()
    assert list(Template.objects.all()) == [kept]


def test_templates_of_another_environment_or_task_are_not_found(
    signed_in, dev, prod, deploy
):
    deploy(prod, "add")
    prod_template = make_template(prod)
    noop_template = make_template(dev, task="noop")
    for template in (prod_template, noop_template):
        base = task_url()  # dev / add
        assert signed_in.get(f"{base}?template={template.pk}").status_code == 404
        assert (
            signed_in.post(
                f"{base}templates/{template.pk}/rename", {"name": "x"}
            ).status_code
            == 404
        )
        assert (
            signed_in.post(f"{base}templates/{template.pk}/delete").status_code == 404
        )
    assert Template.objects.count() == 2
    assert signed_in.get(f"{task_url()}?template=abc").status_code == 404


def test_template_actions_only_take_post(signed_in, dev):
    template = make_template(dev)
    assert signed_in.get(f"{task_url()}templates/").status_code == 405
    assert (
        signed_in.get(f"{task_url()}templates/{template.pk}/delete").status_code == 405
    )
    assert Template.objects.exists()
