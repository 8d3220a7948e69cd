from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.http import QueryDict
from django.utils import timezone

from runs.filter_match import RunMatcher, bulk_actions_of, load_runs_for_matching
from runs.filters import RunFilter
from runs.models import Batch, BulkAction, BulkActionItem, Run
from runs.statuses import RunStatus
from runs.triggering import BatchItem, batch_trigger

pytestmark = pytest.mark.django_db

FILTERS = [
    "",
    "status=QUEUED",
    "status=queued,failed",
    "status=finished&task=email",
    "status=running",
    "task=email,report",
    "tag=vip",
    "tag=vip,eu",
    "version=20260101.1",
    "queue=reports",
    "machine=large-1x",
    "is_test=true",
    "is_test=false",
    "root_only=true",
    "search=idem-3",
    "period=1h",
    "period=30d",
    "period=all&status=COMPLETED",
    "from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&tag=eu",
    "schedule=sched_1",
    "status=EXECUTING,DEQUEUED&tag=vip&period=all",
    "task=email&machine=small-1x&is_test=false&root_only=true",
]

STATUSES = [
    RunStatus.QUEUED,
    RunStatus.EXECUTING,
    RunStatus.DEQUEUED,
    RunStatus.COMPLETED,
    RunStatus.FAILED,
    RunStatus.CANCELED,
    RunStatus.DELAYED,
    RunStatus.WAITING,
]


@pytest.fixture
def sample(dev, make_run, deploy):
    """~40 runs varying every filtered column, some old, some children, one batch."""
    rng = random.Random(7)
    deploy(dev, "email", "report", "cleanup")
    runs = []
    for i in range(36):
        run = make_run(
            dev,
            task=rng.choice(["email", "report", "cleanup"]),
            tags=rng.sample(["vip", "eu", "us", "beta"], rng.randint(0, 2)),
            test=rng.random() < 0.3,
            machine=rng.choice(["", "large-1x"]),
            queue=rng.choice(["", "reports"]),
            idempotency_key=f"idem-{i}" if i % 5 == 0 else None,
        )
        runs.append(run)
    parent = runs[0]
    child = make_run(dev, task="email", parent_run_id=parent.friendly_id)
    batch, batch_runs, _ = batch_trigger(
        dev, [BatchItem(task_identifier="report", payload={"i": i}) for i in range(3)]
    )
    runs += [child, *batch_runs]
    now = timezone.now()
    for run in runs:
        Run.objects.filter(pk=run.pk).update(
            status=rng.choice(STATUSES),
            version=rng.choice(["20260101.1", "20260101.2"]),
            created_at=now
            - timedelta(minutes=rng.choice([1, 30, 90, 3 * 24 * 60, 10 * 24 * 60])),
        )
    bulk = BulkAction.objects.create(environment=dev, type="CANCEL")
    for run in runs[3:8]:
        BulkActionItem.objects.create(bulk_action=bulk, run=run, outcome="succeeded")
    return {"batch": batch, "bulk": bulk, "parent": parent}


def test_matcher_agrees_with_the_filterset_on_a_varied_sample(
    dev, prod, make_run, sample
):
    make_run(prod, task="email")  # another environment never matches a dev filter
    filters = [
        *FILTERS,
        f"batch={sample['batch'].friendly_id}",
        f"bulk_action={sample['bulk'].friendly_id}",
        f"bulk_action={sample['bulk'].friendly_id}&status=QUEUED,COMPLETED",
        f"parent={sample['parent'].friendly_id}",
        f"parent={sample['parent'].friendly_id}&status=finished",
    ]
    runs = list(
        load_runs_for_matching(
            Run.objects.filter(environment=dev).values_list("pk", flat=True)
        )
    )
    bulk_sets = bulk_actions_of([r.pk for r in runs])
    assert len(runs) >= 40
    now = timezone.now()
    sizes = []
    for query in filters:
        run_filter = RunFilter(
            QueryDict(query), queryset=Run.objects.filter(environment=dev)
        )
        assert run_filter.is_valid(), (query, run_filter.error_messages())
        expected = set(run_filter.qs.values_list("pk", flat=True))
        matcher = RunMatcher.from_filter(run_filter)
        matched = {
            r.pk for r in runs if matcher.matches(r, bulk_sets.get(r.pk, ()), now)
        }
        assert matched == expected, query
        sizes.append(len(expected))
    # The sample is varied enough that most filters select a strict, non-empty subset.
    assert sum(0 < size < len(runs) for size in sizes) >= len(filters) - 6, sizes


def test_a_relative_period_is_evaluated_at_match_time(dev, make_run):
    run = make_run(dev)
    run_filter = RunFilter(QueryDict("period=5m"), queryset=Run.objects.all())
    assert run_filter.is_valid()
    matcher = RunMatcher.from_filter(run_filter)
    loaded = load_runs_for_matching([run.pk]).get()
    assert matcher.matches(loaded)
    assert not matcher.matches(loaded, now=timezone.now() + timedelta(minutes=6))


def test_batch_filter_reads_the_joined_batch(dev, make_run):
    batch = Batch.objects.create(environment=dev)
    run = make_run(dev, batch=batch)
    other = make_run(dev)
    run_filter = RunFilter(
        QueryDict(f"batch={batch.friendly_id}"), queryset=Run.objects.all()
    )
    assert run_filter.is_valid()
    matcher = RunMatcher.from_filter(run_filter)
    loaded = {r.pk: r for r in load_runs_for_matching([run.pk, other.pk])}
    assert matcher.matches(loaded[run.pk])
    assert not matcher.matches(loaded[other.pk])


def test_loaded_runs_render_and_match_without_further_queries(
    dev, make_run, django_assert_num_queries
):
    from dashboard.rows import render_run_row

    parent = make_run(dev, metadata={"progress": 0.5}, tags=["vip"])
    child = make_run(dev, parent_run_id=parent.friendly_id)
    run_filter = RunFilter(
        QueryDict(f"parent={parent.friendly_id}&tag=vip&search=x"),
        queryset=Run.objects.all(),
    )
    assert run_filter.is_valid()
    matcher = RunMatcher.from_filter(run_filter)
    with django_assert_num_queries(1):
        runs = list(load_runs_for_matching([parent.pk, child.pk]))
    with django_assert_num_queries(0):
        for run in runs:
            assert 'id="run-' in render_run_row(run)
            matcher.matches(run)
