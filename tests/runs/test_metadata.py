from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from runs.errors import InvalidInput, TooLarge, Unprocessable
from runs.metadata import MetadataUpdate, apply_operations, update_metadata
from runs.models import Run
from runs.statuses import RunStatus


def test_set_delete_and_json_paths():
    data, changed = apply_operations(
        {"a": 1},
        [
            {"type": "set", "key": "b", "value": 2},
            {"type": "set", "key": "$.progress.step", "value": "load"},
            {"type": "delete", "key": "a"},
        ],
    )
    assert changed and data == {"b": 2, "progress": {"step": "load"}}


def test_append_turns_scalars_into_lists():
    data, _ = apply_operations(
        {"s": "x"},
        [
            {"type": "append", "key": "new", "value": 1},
            {"type": "append", "key": "new", "value": 2},
            {"type": "append", "key": "s", "value": "y"},
        ],
    )
    assert data == {"s": ["x", "y"], "new": [1, 2]}


def test_remove_filters_equal_items_and_skips_non_lists():
    data, changed = apply_operations(
        {"l": [1, {"a": 1}, 1], "n": 3},
        [
            {"type": "remove", "key": "l", "value": 1},
            {"type": "remove", "key": "l", "value": {"a": 1}},
        ],
    )
    assert data["l"] == [] and changed
    _, changed = apply_operations(
        {"n": 3}, [{"type": "remove", "key": "n", "value": 3}]
    )
    assert not changed


def test_increment_and_decrement_treat_missing_as_zero():
    data, _ = apply_operations(
        {"s": "text"},
        [
            {"type": "increment", "key": "c", "value": 5},
            {"type": "increment", "key": "c", "value": -2},
            {"type": "increment", "key": "s", "value": 1},
        ],
    )
    assert data == {"c": 3, "s": 1}


def test_update_replaces_everything():
    assert apply_operations({"a": 1}, [{"type": "update", "value": {"b": 2}}])[0] == {
        "b": 2
    }


@pytest.mark.django_db
def test_update_metadata_bumps_version_and_applies_parent_ops(dev, make_run):
    parent = make_run(dev)
    child = make_run(dev, parent_run_id=parent.friendly_id)
    new = update_metadata(
        child,
        MetadataUpdate(
            operations=[{"type": "set", "key": "progress", "value": 0.5}],
            parent_operations=[{"type": "increment", "key": "done", "value": 1}],
        ),
    )
    assert new == {"progress": 0.5}
    child.refresh_from_db()
    parent.refresh_from_db()
    assert child.metadata_version == 2 and child.progress == 0.5
    assert parent.metadata == {"done": 1}


@pytest.mark.django_db
def test_metadata_limit_is_enforced_and_nothing_written(dev, make_run):
    run = make_run(dev)
    with pytest.raises(TooLarge):
        update_metadata(run, MetadataUpdate(metadata={"blob": "x" * 300_000}))
    run.refresh_from_db()
    assert run.metadata == {} and run.metadata_version == 1


@pytest.mark.django_db
def test_metadata_is_frozen_an_hour_after_finish(dev, make_run):
    run = make_run(dev)
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.COMPLETED, finished_at=timezone.now() - timedelta(hours=2)
    )
    run.refresh_from_db()
    with pytest.raises(
        Unprocessable, match="Cannot update metadata for a completed run"
    ):
        update_metadata(run, MetadataUpdate(metadata={"a": 1}))


@pytest.mark.django_db
def test_forbidden_keys_are_rejected(dev, make_run):
    run = make_run(dev)
    with pytest.raises(InvalidInput):
        update_metadata(
            run,
            MetadataUpdate(
                operations=[{"type": "set", "key": "$.__proto__.x", "value": 1}]
            ),
        )
