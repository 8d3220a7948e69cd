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


@pytest.mark.django_db
def test_root_operations_reach_the_root_and_a_root_run_updates_itself(dev, make_run):
    root = make_run(dev)
    parent = make_run(dev, parent_run_id=root.friendly_id)
    child = make_run(dev, parent_run_id=parent.friendly_id)
    update_metadata(
        child,
        MetadataUpdate(
            operations=[],
            root_operations=[{"type": "append", "key": "log", "value": "child"}],
            parent_operations=[{"type": "set", "key": "seen", "value": True}],
        ),
    )
    update_metadata(
        root,
        MetadataUpdate(
            root_operations=[{"type": "append", "key": "log", "value": "root"}]
        ),
    )
    root.refresh_from_db()
    parent.refresh_from_db()
    assert root.metadata == {"log": ["child", "root"]}
    assert parent.metadata == {"seen": True}


@pytest.mark.django_db
def test_replace_writes_the_object_and_an_unchanged_update_writes_nothing(
    dev, make_run
):
    run = make_run(dev, metadata={"a": 1})
    assert update_metadata(run, MetadataUpdate(metadata={"b": 2})) == {"b": 2}
    run.refresh_from_db()
    version = run.metadata_version
    noop = [{"type": "delete", "key": "missing"}]
    assert update_metadata(run, MetadataUpdate(operations=noop)) == {"b": 2}
    run.refresh_from_db()
    assert run.metadata_version == version


@pytest.mark.django_db
def test_an_operation_that_would_pass_the_limit_is_refused_whole(
    dev, make_run, settings
):
    settings.RUNWATCH_METADATA_MAX_BYTES = 100
    run = make_run(dev, metadata={"keep": "me"})
    ops = [
        {"type": "set", "key": "small", "value": 1},
        {"type": "set", "key": "big", "value": "x" * 200},
    ]
    with pytest.raises(TooLarge, match="100 bytes"):
        update_metadata(run, MetadataUpdate(operations=ops))
    run.refresh_from_db()
    assert run.metadata == {"keep": "me"}


@pytest.mark.parametrize(
    "ops",
    [
        "not a list",
        [{"type": "explode", "key": "a"}],
        [{"type": "set", "value": 1}],
        [{"type": "increment", "key": "n", "value": "1"}],
        [{"type": "update", "value": [1]}],
        [{"type": "append", "key": "l"}],
    ],
)
@pytest.mark.django_db
def test_malformed_operations_are_rejected(dev, make_run, ops):
    run = make_run(dev)
    with pytest.raises(InvalidInput):
        update_metadata(run, MetadataUpdate(operations=ops))
