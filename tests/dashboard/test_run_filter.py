from __future__ import annotations

import pytest

from runs import filters
from runs.filters import RunFilter
from runs.models import Run

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
