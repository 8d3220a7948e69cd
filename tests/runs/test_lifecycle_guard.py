from __future__ import annotations

import pytest

from runs.lifecycle import IllegalTransition, transition
from runs.models import Run, RunEvent
from runs.statuses import ALLOWED_FROM, FINISHED, RunStatus

pytestmark = pytest.mark.django_db


def test_finished_statuses_are_terminal():
    for target, sources in ALLOWED_FROM.items():
        assert not (sources & FINISHED), f"{target} may follow a finished status"


def test_illegal_transition_is_refused_before_touching_the_database(dev, make_run):
    run = make_run(dev)
    with pytest.raises(IllegalTransition):
        transition(run.pk, RunStatus.COMPLETED, allowed_from=[RunStatus.QUEUED])


def test_transition_loses_the_race_when_status_moved_on(dev, make_run):
    run = make_run(dev)
    assert transition(run.pk, RunStatus.CANCELED)
    events = RunEvent.objects.filter(run=run).count()
    assert not transition(run.pk, RunStatus.DEQUEUED)
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELED
    assert RunEvent.objects.filter(run=run).count() == events


def test_transition_publishes_after_commit(
    dev, make_run, django_capture_on_commit_callbacks
):
    from realtime import publish

    seen = []
    publish.subscribe(seen.append)
    try:
        run = make_run(dev)
        with django_capture_on_commit_callbacks(execute=True):
            assert transition(run.pk, RunStatus.DEQUEUED)
    finally:
        publish._listeners.remove(seen.append)
    assert any(e["run_id"] == run.pk and e["kind"] == "status" for e in seen)
