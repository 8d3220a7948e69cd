"""`new_instance` builds the same model instance as keyword construction."""

from __future__ import annotations

import pytest
from django.db.models import Model

from runs.bulkinsert import new_instance
from runs.models import Run


def _values(instance: Model) -> dict:
    return {
        f.attname: getattr(instance, f.attname)
        for f in type(instance)._meta.concrete_fields
        if f.name != "friendly_id"  # a fresh random id each time
    }


@pytest.mark.django_db
def test_the_same_run_as_keyword_construction(dev, make_run, django_assert_num_queries):
    parent = make_run(dev, task="a")
    values = {
        "environment": dev,
        "task_identifier": "a",
        "status": "QUEUED",
        "payload": "{}",
        "tags": ["x"],
        "parent": parent,
        "root_id": parent.pk,
        "batch": None,
        "max_attempts": 5,
    }
    built, expected = new_instance(Run, **values), Run(**values)
    assert _values(built) == _values(expected)
    assert built.friendly_id.startswith("run_") and built._state.adding
    assert built.metadata == {} and built.metadata is not expected.metadata
    with django_assert_num_queries(0):  # related objects are cached, not fetched
        assert (built.environment, built.parent, built.batch) == (dev, parent, None)


def test_unknown_fields_are_refused():
    with pytest.raises(TypeError, match="no field named 'colour'"):
        new_instance(Run, colour="blue")
