"""Helpers for bulk action tests: runs in chosen statuses, processing to the end."""

from __future__ import annotations

import pytest
from django.utils import timezone

from runs import bulk
from runs.models import BulkAction, Run
from runs.statuses import FINISHED


@pytest.fixture
def runs_in(make_run):
    """runs_in(env, "QUEUED", 3, task="task-a") → 3 runs of task-a, moved to that status."""

    def _runs_in(environment, status: str, count: int, task: str = "task-a", **opts):
        runs = [make_run(environment, task=task, **opts) for _ in range(count)]
        if status != "QUEUED":
            now = timezone.now()
            Run.objects.filter(pk__in=[r.pk for r in runs]).update(
                status=status,
                finished_at=now if status in FINISHED else None,
                started_at=now,
            )
        for run in runs:
            run.refresh_from_db()
        return runs

    return _runs_in


def process_all(bulk_action: BulkAction) -> BulkAction:
    """Run chunks until the bulk action has no work left (as the scheduler would)."""
    for _ in range(1000):
        if bulk.process_next_chunk(bulk_action.pk).finished:
            break
    bulk_action.refresh_from_db()
    return bulk_action


@pytest.fixture
def api(dev):
    """The dev environment's secret key, sending the SDK's API version header."""
    from tests.api.conftest import ApiClient

    return ApiClient(dev.api_key)


@pytest.fixture
def prod_api(prod):
    from tests.api.conftest import ApiClient

    return ApiClient(prod.api_key)


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice)
    return client
