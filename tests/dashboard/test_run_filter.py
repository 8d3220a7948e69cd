from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs import filters
from runs.filters import RunFilter
from runs.models import Run, RunTag
from runs.pagination import ANNOTATED_KEYS, KEYS, page_keys, paginate
from runs.statuses import RunStatus

pytestmark = pytest.mark.django_db


def matching(env, **data) -> set[int]:
    f = RunFilter(data, queryset=Run.objects.filter(environment=env), environment=env)
    assert f.is_valid(), f.error_messages()
    return set(f.qs.values_list("pk", flat=True))


@pytest.mark.parametrize("probe_limit", [1, 3, 5000])
def test_tag_filter_finds_the_same_runs_from_either_side(
    dev, prod, make_run, monkeypatch, probe_limit
):
    """Below the probe limit the runs come from the tag rows' ids, above it from a
    per-run EXISTS; both must give the same answer (any of the tags, this env only)."""
    monkeypatch.setattr(filters, "TAG_PROBE_LIMIT", probe_limit)
    vip = [make_run(dev, tags=["vip"]) for _ in range(3)]
    both = make_run(dev, tags=["vip", "beta"])
    beta = make_run(dev, tags=["beta"])
    make_run(dev, tags=["other"])
    make_run(prod, tags=["vip"])
    assert matching(dev, tag="vip") == {r.pk for r in [*vip, both]}
    assert matching(dev, tag="vip,beta") == {r.pk for r in [*vip, both, beta]}
    assert matching(dev, tag="vip", status="QUEUED") == {r.pk for r in [*vip, both]}
    assert matching(dev, tag="nope") == set()


def test_matches_agrees_with_the_queryset(dev, make_run):
    from runs.statuses import RunStatus

    runs = [
        make_run(dev, task="email", tags=["vip"]),
        make_run(dev, task="email", tags=["beta"], test=True),
        make_run(dev, task="report", machine="large-1x", idempotency_key="k-1"),
    ]
    Run.objects.filter(pk=runs[1].pk).update(status=RunStatus.FAILED)
    rows = {r.pk: r for r in Run.objects.filter(environment=dev).with_row_columns()}
    for data in (
        {},
        {"status": "failed"},
        {"status": "QUEUED", "task": "email"},
        {"tag": "vip,beta"},
        {"is_test": "false"},
        {"machine": "large-1x"},
        {"search": "k-1"},
        {"search": runs[0].friendly_id},
        {"period": "1h"},
    ):
        f = RunFilter(
            data, queryset=Run.objects.filter(environment=dev), environment=dev
        )
        assert f.is_valid()
        expected = set(f.qs.values_list("pk", flat=True))
        assert {pk for pk, run in rows.items() if f.matches(run)} == expected, data


def tag_filter(env, **data) -> RunFilter:
    f = RunFilter(data, queryset=Run.objects.filter(environment=env), environment=env)
    assert f.is_valid(), f.error_messages()
    return f


def walk(run_filter: RunFilter, size: int) -> tuple[list[int], list[int]]:
    """Every page forward with `after`, then back from the last with `before`."""
    forward, pages, after = [], [], None
    while True:
        page = paginate(run_filter.qs, size=size, after=after)
        pages.append(page)
        forward += [r.pk for r in page.items]
        if not page.next_cursor:
            break
        after = page.next_cursor
    backward = list(reversed([r.pk for r in pages[-1].items]))
    before = pages[-1].previous_cursor
    while before:
        page = paginate(run_filter.qs, size=size, before=before)
        backward += [r.pk for r in reversed(page.items)]
        before = page.previous_cursor
    return forward, list(reversed(backward))


def test_one_tag_pages_in_the_tag_rows_order_like_the_runs_order(dev, make_run):
    """One tag is read in RunTag's index order (its copy of created_at and id): the
    pages, forward and back, are those of the runs' own order, ties included."""
    tagged = [make_run(dev, tags=["vip"]) for _ in range(7)]
    make_run(dev, tags=["other"])
    same_time = timezone.now() - timedelta(minutes=5)
    tied = [r.pk for r in tagged[2:5]]
    Run.objects.filter(pk__in=tied).update(created_at=same_time)
    RunTag.objects.filter(run_id__in=tied).update(created_at=same_time)
    f = tag_filter(dev, tag="vip")
    assert page_keys(f.qs) == ANNOTATED_KEYS
    expected = list(
        Run.objects.filter(pk__in=[r.pk for r in tagged])
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    )
    forward, backward = walk(f, size=2)
    assert forward == expected
    assert backward == expected


def test_one_tag_alone_needs_no_probe(dev, make_run):
    make_run(dev, tags=["vip"])
    f = tag_filter(dev, tag="vip")
    with CaptureQueriesContext(connection) as queries:
        page = paginate(f.qs, size=25)
    assert len(queries) == 1 and len(page.items) == 1
    assert "runs_runtag" in queries[0]["sql"]


def test_one_common_tag_with_a_run_filter_checks_each_run_instead(
    dev, make_run, monkeypatch
):
    """Past the probe limit, a tag with a status filter walks the runs (status index)
    and checks each against (run, tag): a selective filter finds its page sooner."""
    monkeypatch.setattr(filters, "TAG_PROBE_LIMIT", 2)
    runs = [make_run(dev, tags=["vip"]) for _ in range(3)]
    Run.objects.filter(pk=runs[0].pk).update(status=RunStatus.FAILED)
    common = tag_filter(dev, tag="vip", status="FAILED")
    assert page_keys(common.qs) == KEYS
    assert [r.pk for r in paginate(common.qs, size=25).items] == [runs[0].pk]
    monkeypatch.setattr(filters, "TAG_PROBE_LIMIT", 5000)
    rare = tag_filter(dev, tag="vip", status="FAILED")
    assert page_keys(rare.qs) == ANNOTATED_KEYS
    assert [r.pk for r in paginate(rare.qs, size=25).items] == [runs[0].pk]


def test_one_tag_respects_the_window_and_the_environment(dev, prod, make_run):
    old = make_run(dev, tags=["vip"])
    Run.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=9))
    RunTag.objects.filter(run=old).update(created_at=timezone.now() - timedelta(days=9))
    new = make_run(dev, tags=["vip"])
    make_run(prod, tags=["vip"])
    assert [r.pk for r in paginate(tag_filter(dev, tag="vip").qs, size=5).items] == [
        new.pk
    ]
    month = paginate(tag_filter(dev, tag="vip", period="30d").qs, size=5)
    assert [r.pk for r in month.items] == [new.pk, old.pk]
