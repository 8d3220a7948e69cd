"""Run.from_db fills instances without Model.__init__: what Django's loading gives
must hold (loaded values, deferred columns, saving)."""

from __future__ import annotations

import pytest

from runs.models import Run

pytestmark = pytest.mark.django_db


def test_a_loaded_run_has_its_columns_and_saves_as_an_update(dev, make_run):
    made = make_run(dev, tags=["vip"], metadata={"progress": 0.5})
    run = Run.objects.get(pk=made.pk)
    assert (run.friendly_id, run.environment_id, run.tags) == (
        made.friendly_id,
        dev.pk,
        ["vip"],
    )
    assert run.metadata == {"progress": 0.5} and run.created_at == made.created_at
    assert run._state.adding is False and run._state.db == "default"
    assert run.get_deferred_fields() == set()
    run.version = "v2"
    run.save(update_fields=["version"])
    assert Run.objects.count() == 1 and Run.objects.get(pk=run.pk).version == "v2"


def test_columns_left_out_are_deferred_and_load_when_read(
    dev, make_run, django_assert_num_queries
):
    made = make_run(dev, payload={"n": 1})
    with django_assert_num_queries(1):
        run = Run.objects.only("friendly_id", "environment").get(pk=made.pk)
    assert "payload" in run.get_deferred_fields()
    with django_assert_num_queries(1):
        assert run.payload == made.payload
    with django_assert_num_queries(1):
        assert run.environment.slug == "dev"  # the foreign key loads as usual
