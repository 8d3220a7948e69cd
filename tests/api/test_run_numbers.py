"""Run numbers stay dense and unique under concurrent triggers (PostgreSQL assigns them
in the transaction's last statement)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from runs.models import Run
from runs.triggering import BatchItem, batch_trigger, trigger


@pytest.mark.django_db(transaction=True)
def test_concurrent_triggers_get_dense_unique_numbers(dev, deploy):
    deploy(dev, "a")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                trigger(dev, "a", {})
            batch_trigger(dev, [BatchItem("a", {}) for _ in range(5)])
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
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
