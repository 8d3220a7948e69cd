from __future__ import annotations

from datetime import timedelta

import pytest
from django.http import QueryDict
from django.utils import timezone

from runs.actions import add_tags, cancel_run, cancel_runs, reschedule
from runs.errors import InvalidInput, Unprocessable
from runs.filters import RunFilter, api_params_to_filter_data
from runs.models import Run
from runs.pagination import InvalidCursor, paginate
from runs.statuses import RunStatus

pytestmark = pytest.mark.django_db


def runs_matching(env, **data):
    f = RunFilter(data, queryset=Run.objects.filter(environment=env))
    assert f.is_valid(), f.error_messages()
    return set(f.qs.values_list("pk", flat=True))


def test_status_groups_tags_and_tasks(dev, make_run):
    a = make_run(dev, task="email", tags=["vip"])
    b = make_run(dev, task="report")
    Run.objects.filter(pk=b.pk).update(status=RunStatus.FAILED)
    assert runs_matching(dev, status="queued") == {a.pk}
    assert runs_matching(dev, status="failed") == {b.pk}
    assert runs_matching(dev, status="QUEUED,FAILED") == {a.pk, b.pk}
    assert runs_matching(dev, tag="vip") == {a.pk}
    assert runs_matching(dev, task=["email", "report"]) == {a.pk, b.pk}
    assert runs_matching(dev, search=a.friendly_id) == {a.pk}


def test_unknown_status_is_a_validation_error(dev):
    f = RunFilter({"status": "QUEUED,NOPE"}, queryset=Run.objects.all())
    assert not f.is_valid()
    assert "Invalid status values: NOPE" in " ".join(f.error_messages())


def test_default_window_is_seven_days(dev, make_run):
    old = make_run(dev)
    Run.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    new = make_run(dev)
    assert runs_matching(dev) == {new.pk}
    assert runs_matching(dev, period="30d") == {old.pk, new.pk}
    assert runs_matching(dev, period="all") == {old.pk, new.pk}


def test_api_filter_names_map_onto_the_filterset(dev, make_run):
    run = make_run(dev, task="email", test=True)
    data = api_params_to_filter_data(
        QueryDict(
            "filter[taskIdentifier]=email&filter[isTest]=true&filter[createdAt][period]=1h"
        )
    )
    assert data == {"task": "email", "is_test": "true", "period": "1h"}
    assert runs_matching(dev, **data) == {run.pk}


def test_keyset_pages_forward_and_back(dev, make_run):
    runs = [make_run(dev) for _ in range(7)]
    newest_first = [r.pk for r in reversed(runs)]
    qs = Run.objects.filter(environment=dev)
    first = paginate(qs, size=3)
    assert [r.pk for r in first.items] == newest_first[
        :3
    ] and first.previous_cursor is None
    second = paginate(qs, size=3, after=first.next_cursor)
    assert [r.pk for r in second.items] == newest_first[3:6]
    third = paginate(qs, size=3, after=second.next_cursor)
    assert [r.pk for r in third.items] == newest_first[6:] and third.next_cursor is None
    back = paginate(qs, size=3, before=second.previous_cursor)
    assert [r.pk for r in back.items] == newest_first[
        :3
    ] and back.previous_cursor is None


def test_garbage_cursor_is_rejected(dev):
    with pytest.raises(InvalidCursor):
        paginate(Run.objects.all(), size=3, after="not-a-cursor!")


def test_cancel_skips_finished_runs_and_cascades(dev, make_run):
    parent = make_run(dev)
    child = make_run(dev, parent_run_id=parent.friendly_id)
    done = make_run(dev)
    Run.objects.filter(pk=done.pk).update(status=RunStatus.COMPLETED)
    canceled = cancel_runs([parent.pk, done.pk])
    assert set(canceled) == {parent.pk, child.pk}
    assert Run.objects.get(pk=child.pk).status == RunStatus.CANCELED
    assert Run.objects.get(pk=done.pk).status == RunStatus.COMPLETED
    assert cancel_run(Run.objects.get(pk=parent.pk)) is False


def test_reschedule_only_delayed_runs(dev, make_run):
    delayed = make_run(dev, delay="1h")
    moved = reschedule(delayed, "2h")
    assert moved.delay_until - timezone.now() > timedelta(minutes=119)
    with pytest.raises(InvalidInput, match="not delayed"):
        reschedule(make_run(dev), "1h")
    with pytest.raises(InvalidInput, match="Invalid delay"):
        reschedule(moved, "2001-01-01")


def test_add_tags_respects_the_cap(dev, make_run):
    run = make_run(dev, tags=[f"t{i}" for i in range(9)])
    assert add_tags(run, ["t0", "new"]) == "Successfully set 1 new tags."
    with pytest.raises(Unprocessable, match="trying to set 11"):
        add_tags(run, ["x"])
