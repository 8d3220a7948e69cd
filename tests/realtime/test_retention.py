"""The live-signal table is pruned like metadata events: old signals go, recent stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from realtime import retention
from realtime.models import LiveSignal
from realtime.publish import object_changed
from runs.engine import retention as chunked  # where the chunk size lives

pytestmark = pytest.mark.django_db


def test_signals_older_than_the_retention_are_pruned_in_chunks(
    dev, settings, monkeypatch
):
    settings.RUNWATCH_LIVE_SIGNAL_RETENTION_SECONDS = 60
    monkeypatch.setattr(chunked, "CHUNK", 2)  # several chunks, a partial last one
    old = timezone.now() - timedelta(seconds=120)
    LiveSignal.objects.bulk_create(
        LiveSignal(kind="bulk", object_id=i, environment_id=dev.pk, created_at=old)
        for i in range(5)
    )
    object_changed("batch", 7, dev.pk)  # just now: a relay may not have read it yet
    assert retention.prune_live_signals() == 5
    assert list(LiveSignal.objects.values_list("kind", "object_id")) == [("batch", 7)]
    assert retention.prune_live_signals() == 0


def test_pruning_stops_after_max_chunks(dev, settings, monkeypatch):
    settings.RUNWATCH_LIVE_SIGNAL_RETENTION_SECONDS = 60
    monkeypatch.setattr(chunked, "CHUNK", 2)
    old = timezone.now() - timedelta(seconds=120)
    LiveSignal.objects.bulk_create(
        LiveSignal(kind="bulk", object_id=i, environment_id=dev.pk, created_at=old)
        for i in range(5)
    )
    assert retention.prune_live_signals(max_chunks=2) == 4
    assert LiveSignal.objects.get().object_id == 4  # the newest old one is next
