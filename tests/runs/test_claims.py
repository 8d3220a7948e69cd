"""Claiming queued runs: order, queue rules, TTLs, versions, and races between claimers."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from runs.deployments import TaskSpec, register_tasks, task_set_hash
from runs.engine import scheduler
from runs.engine.claims import ClaimRules, claim_runs
from runs.models import Attempt, Queue, Run, RunEvent
from runs.statuses import RunStatus
from runs.triggering import BatchItem, TriggerOptions, batch_trigger, trigger
from tests.concurrency import run_concurrently

S = RunStatus


def spec(slug: str, **overrides) -> TaskSpec:
    return TaskSpec(slug=slug, module="tests.fake", function=slug, **overrides)


def claim(env, limit: int = 10, worker: str = "w1", tasks=("a",), specs=None):
    specs = specs or [spec(t) for t in tasks]
    rules = ClaimRules.load([env.pk], task_set_hash(specs))
    return claim_runs(worker, [env.pk], list(tasks), limit, rules)


@pytest.fixture
def deployed(dev):
    return register_tasks(dev, [spec("a")])


@pytest.mark.django_db
def test_claims_follow_priority_then_age(dev, deployed):
    old, _ = trigger(dev, "a", {"n": "old"})
    new, _ = trigger(dev, "a", {"n": "new"})
    urgent, _ = trigger(dev, "a", {"n": "urgent"}, TriggerOptions(priority=60))
    Run.objects.filter(pk=old.pk).update(
        queue_timestamp=timezone.now() - timedelta(seconds=30)
    )
    assert [c.pk for c in claim(dev, limit=2)] == [urgent.pk, old.pk]
    assert [c.pk for c in claim(dev)] == [new.pk]


@pytest.mark.django_db
def test_a_claim_starts_the_run_stamps_the_version_and_opens_an_attempt(dev, deployed):
    run, _ = trigger(dev, "a", {"x": 1}, TriggerOptions(ttl="1h"))
    [claimed] = claim(dev)
    run.refresh_from_db()
    assert (run.status, run.worker_id, run.attempt_count) == (S.EXECUTING, "w1", 1)
    assert (run.version, run.deployment_id) == (deployed.version, deployed.pk)
    assert run.ttl_expires_at is None  # a retry is not expired by the first TTL
    assert claimed.attempt == 1 and claimed.payload == '{"x":1}'
    assert Attempt.objects.get(pk=claimed.attempt_id).run_id == run.pk
    history = RunEvent.objects.filter(run=run).order_by("id")
    assert list(history.values_list("status", flat=True)) == [
        S.QUEUED,
        S.DEQUEUED,
        S.EXECUTING,
    ]
    assert claim(dev) == []


@pytest.mark.django_db
def test_a_run_past_its_ttl_is_never_started(dev, deployed):
    run, _ = trigger(dev, "a", {}, TriggerOptions(ttl="1s"))
    Run.objects.filter(pk=run.pk).update(
        ttl_expires_at=timezone.now() - timedelta(milliseconds=1)
    )
    assert claim(dev) == []
    assert scheduler.expire_ttl() == 1


@pytest.mark.django_db
def test_paused_queues_are_skipped_until_resumed(dev, deployed):
    run, _ = trigger(dev, "a", {})
    Queue.objects.filter(environment=dev, name="task/a").update(paused=True)
    assert claim(dev) == []
    Queue.objects.filter(environment=dev, name="task/a").update(paused=False)
    assert [c.pk for c in claim(dev)] == [run.pk]


@pytest.mark.django_db
def test_open_queues_are_claimed_in_order_past_a_paused_one(dev, deployed):
    """With a paused queue in the environment, the other queues' heads are merged
    in claim order (on PostgreSQL one index probe per queue, the paused queue's runs
    are never walked)."""
    now = timezone.now()

    def queued(queue: str, seconds_ago: int) -> Run:
        run, _ = trigger(dev, "a", {}, TriggerOptions(queue=queue))
        stamp = now - timedelta(seconds=seconds_ago)
        Run.objects.filter(pk=run.pk).update(queue_timestamp=stamp)
        return run

    held = [queued("held", 100 + n) for n in range(5)]
    Queue.objects.create(environment=dev, name="held", paused=True)
    x_old, y_mid, x_new = queued("x", 30), queued("y", 20), queued("x", 10)
    assert [c.pk for c in claim(dev, limit=2)] == [x_old.pk, y_mid.pk]
    assert [c.pk for c in claim(dev)] == [x_new.pk]
    Queue.objects.filter(environment=dev, name="held").update(paused=False)
    assert [c.pk for c in claim(dev)] == [r.pk for r in reversed(held)]


@pytest.mark.django_db
def test_a_queue_limit_counts_running_runs_per_concurrency_key(dev):
    register_tasks(dev, [spec("a", queue="limited", queue_concurrency_limit=2)])
    runs = {
        key: [
            trigger(dev, "a", {}, TriggerOptions(concurrency_key=key))[0]
            for _ in range(3)
        ]
        for key in ("org1", "org2")
    }
    specs = [spec("a", queue="limited", queue_concurrency_limit=2)]
    first = claim(dev, specs=specs)
    assert len(first) == 4  # two per key
    assert claim(dev, specs=specs) == []
    Run.objects.filter(pk=runs["org1"][0].pk).update(status=S.COMPLETED)
    [next_one] = claim(dev, specs=specs)
    assert next_one.pk == runs["org1"][2].pk


@pytest.mark.django_db
def test_a_run_locked_to_a_version_waits_for_a_worker_with_that_code(dev):
    v1 = register_tasks(dev, [spec("a")])
    v2 = register_tasks(dev, [spec("a"), spec("b")])
    pinned, _ = trigger(dev, "a", {}, TriggerOptions(lock_to_version=v1.version))
    floating, _ = trigger(dev, "a", {})
    new_code = [spec("a"), spec("b")]
    assert [c.pk for c in claim(dev, tasks=("a", "b"), specs=new_code)] == [floating.pk]
    assert Run.objects.get(pk=floating.pk).version == v2.version
    [old] = claim(dev, worker="w-old", specs=[spec("a")])
    assert old.pk == pinned.pk and old.version == v1.version


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_take_each_run_exactly_once(dev, deployed):
    batch_trigger(dev, [BatchItem("a", {"i": i}) for i in range(300)])
    taken: dict[str, list[int]] = {}
    barrier = threading.Barrier(4)

    def claimer(i: int) -> None:
        got: list[int] = []
        barrier.wait()
        try:
            while batch := claim(dev, limit=7, worker=f"w{i}"):
                got += [c.pk for c in batch]
        finally:
            taken[f"w{i}"] = got

    assert run_concurrently(claimer, 4, timeout=60) == []
    every = [pk for got in taken.values() for pk in got]
    assert len(every) == len(set(every)) == 300
    assert sum(1 for got in taken.values() if got) > 1  # they really raced
    assert Attempt.objects.count() == 300


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_expiry_racing_dequeue_has_exactly_one_winner(dev, deployed):
    _, runs, _ = batch_trigger(
        dev, [BatchItem("a", {}, options=TriggerOptions(ttl="1h")) for _ in range(400)]
    )
    barrier = threading.Barrier(3)
    go = threading.Event()

    def claimer(name: str) -> None:
        Run.objects.exists()  # connect before the race
        barrier.wait()
        go.wait(5)
        while claim(dev, limit=1, worker=name):
            pass

    def expirer() -> None:
        barrier.wait()
        # Due in a moment: the claimers and the expiry sweep overlap.
        Run.objects.update(ttl_expires_at=timezone.now() + timedelta(milliseconds=200))
        go.set()
        deadline = timezone.now() + timedelta(seconds=2)
        while timezone.now() < deadline:
            scheduler.expire_ttl()

    racers = [lambda: claimer("w1"), lambda: claimer("w2"), expirer]
    assert run_concurrently(lambda i: racers[i](), len(racers)) == []
    statuses = dict(Run.objects.values_list("pk", "status"))
    assert set(statuses.values()) == {S.EXECUTING, S.EXPIRED}
    for run in runs:
        moves = list(
            RunEvent.objects.filter(
                run=run, status__in=[S.EXECUTING, S.EXPIRED]
            ).values_list("status", flat=True)
        )
        assert moves == [statuses[run.pk]], (run.pk, moves)
        if statuses[run.pk] == S.EXPIRED:
            assert not Attempt.objects.filter(run=run).exists()
