"""Run numbers stay dense and unique under concurrent triggers (PostgreSQL assigns them
in the transaction's last statement)."""

from __future__ import annotations

import pytest

from runs.models import Run
from runs.triggering import BatchItem, batch_trigger, trigger
from tests.concurrency import run_concurrently


@pytest.mark.django_db(transaction=True)
def test_concurrent_triggers_get_dense_unique_numbers(dev, deploy):
    deploy(dev, "a")

    def work(_: int) -> None:
        for _ in range(10):
            trigger(dev, "a", {})
        batch_trigger(dev, [BatchItem("a", {}) for _ in range(5)])

    errors = run_concurrently(work, 6, timeout=60)
    assert errors == []
    numbers = sorted(
        Run.objects.filter(environment=dev).values_list("number", flat=True)
    )
    assert numbers == list(range(1, 91))


@pytest.mark.django_db
def test_returned_runs_carry_their_numbers(dev, deploy):
    deploy(dev, "a")
    run, _ = trigger(dev, "a", {})
    _, runs, _ = batch_trigger(dev, [BatchItem("a", {}) for _ in range(3)])
    assert [run.number, *(r.number for r in runs)] == [1, 2, 3, 4]
    assert [r.number for r in Run.objects.order_by("pk")] == [1, 2, 3, 4]
