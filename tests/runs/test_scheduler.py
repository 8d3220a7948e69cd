"""The scheduler's sweeps, called directly (the worker calls them twice a second)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from realtime.models import LiveSignal
from runs.actions import cancel_runs
from runs.engine import retention, scheduler
from runs.engine.batches import settle_batches
from runs.models import Attempt, Batch, Run, RunEvent
from runs.statuses import RunStatus
from runs.triggering import BatchItem, TriggerOptions, batch_trigger, trigger

pytestmark = pytest.mark.django_db

S = RunStatus


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def test_a_delayed_run_is_queued_once_due(dev, make_run):
    due = make_run(dev, delay="1h", priority=30)
    later = make_run(dev, delay="1h")
    Run.objects.filter(pk=due.pk).update(delay_until=ago(1))
    assert scheduler.tick() == 1
    due.refresh_from_db()
    later.refresh_from_db()
    assert (due.status, later.status) == (S.QUEUED, S.DELAYED)
    assert due.queued_at and due.queued_at - due.queue_timestamp == timedelta(
        seconds=30
    )


def test_a_retry_is_queued_when_its_backoff_has_passed(dev, make_run):
    run = make_run(dev)
    Run.objects.filter(pk=run.pk).update(status=S.WAITING, retry_at=ago(0.1))
    waiting_on_child = make_run(dev)
    Run.objects.filter(pk=waiting_on_child.pk).update(status=S.WAITING)
    scheduler.tick()
    assert Run.objects.get(pk=run.pk).status == S.QUEUED
    assert Run.objects.get(pk=run.pk).retry_at is None
    assert Run.objects.get(pk=waiting_on_child.pk).status == S.WAITING


def test_queued_and_pending_version_runs_expire_after_their_ttl(dev, make_run):
    queued = make_run(dev, ttl="1s")
    pending = make_run(dev, task="not-deployed", ttl=1, undeployed=True)
    fresh = make_run(dev, ttl="1h")
    assert pending.status == S.PENDING_VERSION
    Run.objects.filter(pk__in=[queued.pk, pending.pk]).update(ttl_expires_at=ago(0.5))
    assert scheduler.expire_ttl() == 2
    for run in (queued, pending):
        run.refresh_from_db()
        assert run.status == S.EXPIRED and run.expired_at and run.finished_at
    assert Run.objects.get(pk=fresh.pk).status == S.QUEUED


def test_the_ttl_clock_starts_after_the_delay(dev, make_run):
    run = make_run(dev, delay="1h", ttl="10m")
    assert run.ttl_expires_at - run.delay_until == timedelta(minutes=10)


def test_a_stale_run_is_requeued_while_attempts_remain_else_crashed(
    dev, make_run, settings
):
    settings.RUNWATCH_HEARTBEAT_TIMEOUT_SECONDS = 5
    retry, last = make_run(dev, priority=10), make_run(dev, max_attempts=2)
    healthy = make_run(dev)
    for run, attempt in ((retry, 1), (last, 2), (healthy, 1)):
        Run.objects.filter(pk=run.pk).update(
            status=S.EXECUTING, worker_id="dead", attempt_count=attempt
        )
        Attempt.objects.create(run=run, number=attempt, started_at=ago(60))
    Run.objects.filter(pk__in=[retry.pk, last.pk]).update(heartbeat_at=ago(6))
    Run.objects.filter(pk=healthy.pk).update(heartbeat_at=ago(1))

    assert scheduler.recover_stale() == 2
    retry.refresh_from_db()
    last.refresh_from_db()
    assert (retry.status, retry.worker_id, retry.error["name"]) == (
        S.QUEUED,
        "",
        "WorkerLost",
    )
    assert retry.queued_at - retry.queue_timestamp == timedelta(seconds=10)
    assert last.status == S.CRASHED and last.finished_at
    assert Run.objects.get(pk=healthy.pk).status == S.EXECUTING
    assert set(
        Attempt.objects.filter(run__in=[retry, last]).values_list("status", flat=True)
    ) == {"CRASHED"}


def test_a_batch_settles_however_its_runs_end(dev, deploy):
    deploy(dev, "a")
    batch, runs, _ = batch_trigger(dev, [BatchItem("a", {"i": i}) for i in range(3)])
    cancel_runs([runs[0].pk])
    Run.objects.filter(pk=runs[1].pk).update(ttl_expires_at=ago(1))
    scheduler.expire_ttl()
    assert settle_batches() == 0
    assert Batch.objects.get(pk=batch.pk).status == "PENDING"

    cancel_runs([runs[2].pk])
    assert settle_batches() == 1
    settled = Batch.objects.get(pk=batch.pk)
    assert settled.status == "COMPLETED" and settled.completed_at
    assert LiveSignal.objects.filter(kind="batch", object_id=batch.pk).exists()
    assert settle_batches() == 0  # once


def test_old_metadata_events_are_pruned_and_history_is_kept(dev, make_run, settings):
    settings.RUNWATCH_METADATA_EVENT_RETENTION_SECONDS = 60
    run = make_run(dev)
    for age, kind in (
        (120, "metadata"),
        (120, "log"),
        (120, "status"),
        (5, "metadata"),
    ):
        RunEvent.objects.create(
            run=run, environment_id=dev.pk, kind=kind, created_at=ago(age)
        )
    before = RunEvent.objects.filter(run=run).count()
    assert retention.prune_metadata_events() == 1
    assert RunEvent.objects.filter(run=run).count() == before - 1
    assert not RunEvent.objects.filter(kind="metadata", created_at__lt=ago(60)).exists()


def test_the_pending_version_release_takes_the_task_queue_and_max_duration(dev, deploy):
    run, _ = trigger(dev, "later", {})
    explicit, _ = trigger(
        dev, "later", {}, TriggerOptions(queue="mine", max_duration=60)
    )
    assert run.status == S.PENDING_VERSION and run.queue == "task/later"
    deploy(dev, "later", queue="reports", max_duration=1)
    run.refresh_from_db()
    explicit.refresh_from_db()
    assert (run.status, run.queue, run.max_duration) == (S.QUEUED, "reports", 5)
    assert (explicit.status, explicit.queue, explicit.max_duration) == (
        S.QUEUED,
        "mine",
        60,
    )


def test_a_run_left_pending_after_its_deployment_is_released_by_the_sweep(dev, deploy):
    deploy(dev, "later", queue="reports")
    # what a trigger that read "no task" just before the deployment committed leaves
    stranded, _ = trigger(dev, "later", {})
    Run.objects.filter(pk=stranded.pk).update(
        status=S.PENDING_VERSION, queue="task/later"
    )
    waiting, _ = trigger(dev, "not-deployed", {})
    assert waiting.status == S.PENDING_VERSION
    scheduler.tick()
    stranded.refresh_from_db()
    waiting.refresh_from_db()
    assert (stranded.status, stranded.queue) == (S.QUEUED, "reports")
    assert waiting.status == S.PENDING_VERSION
    assert scheduler.tick() == 0  # nothing left to release: the sweep is idempotent
