"""The official SDK's runs.bulk.* against a live server (bulk_scenarios/bulk.mjs).

No worker runs in SDK tests, so a thread here advances bulk actions the way a
worker's scheduler pass does. It leaves alone bulk actions named "held…", which the
scenario aborts while they are still pending.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from runs import bulk
from runs.models import ACTIVE_BULK_STATUSES, BulkAction
from tests.sdk import test_sdk as harness

node = harness.node  # the fixture: node installed, npm ci done

pytestmark = [pytest.mark.sdk, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def bulk_processor(transactional_db):
    stop = threading.Event()

    def loop() -> None:
        try:
            while not stop.wait(0.05):
                active = BulkAction.objects.filter(
                    status__in=ACTIVE_BULK_STATUSES
                ).exclude(name__startswith="held")
                for pk in active.values_list("pk", flat=True):
                    bulk.process_next_chunk(pk)
        finally:
            connection.close()

    thread = threading.Thread(target=loop, daemon=True, name="bulk-processor")
    thread.start()
    yield
    stop.set()
    thread.join(10)


def test_sdk_bulk_actions(bulk_processor, node, live_url, envs, deploy):
    scenario = harness.SDK_DIR / "bulk_scenarios" / "bulk.mjs"
    harness.test_sdk_scenario(scenario, node, live_url, envs, deploy)
