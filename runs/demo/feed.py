"""The demo feed: a varied stream of demo runs into an environment, like real traffic
(single triggers and the odd batch, delays, priorities, test runs, bursts of syncs
whose TTL runs out while they queue, and now and then an operator canceling a slow
report)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from runs.actions import cancel_run
from runs.models import Environment, Run
from runs.statuses import RunStatus
from runs.triggering import BatchItem, TriggerOptions, batch_trigger, trigger

CUSTOMERS = ["acme", "globex", "initech", "umbrella", "hooli", "stark"]
WAREHOUSES = ["berlin", "dallas", "osaka", "lagos"]


@dataclass(frozen=True)
class DemoRun:
    task: str
    payload: dict
    options: TriggerOptions


def _order(rng: random.Random, tags: list[str], customer: str) -> DemoRun:
    order = rng.randint(10_000, 99_999)
    return DemoRun(
        "process-order",
        {
            "order_id": order,
            "items": rng.randint(1, 5),
            "email": f"buyer@{customer}.com",
        },
        TriggerOptions(
            tags=[*tags, f"order_{order}"],
            idempotency_key=f"order-{order}",
            priority=rng.choice([0, 0, 0, 30]),
        ),
    )


def _campaign(rng: random.Random, tags: list[str], customer: str) -> DemoRun:
    recipients = [
        f"user{rng.randint(1, 999)}@{customer}.com" for _ in range(rng.randint(2, 6))
    ]
    return DemoRun(
        "email-campaign", {"recipients": recipients}, TriggerOptions(tags=tags)
    )


CHOICES: list[tuple[float, Callable[[random.Random, list[str], str], DemoRun]]] = [
    (0.28, _order),
    (
        0.12,
        lambda rng, tags, _: DemoRun(
            "sync-inventory",
            {"warehouse": rng.choice(WAREHOUSES)},
            TriggerOptions(tags=tags, ttl="2m"),
        ),
    ),
    (
        0.15,
        lambda rng, tags, _: DemoRun(
            "charge-card",
            {"amount": rng.choice([rng.randint(5, 500)] * 19 + [0])},
            TriggerOptions(tags=tags, test=rng.random() < 0.1),
        ),
    ),
    (
        0.15,
        lambda rng, tags, _: DemoRun(
            "resize-image",
            {"url": f"https://cdn.example.com/{rng.randint(1, 9999)}.png"},
            TriggerOptions(tags=tags, delay=rng.choice([None, None, "5s", "20s"])),
        ),
    ),
    (0.12, _campaign),
    (
        0.12,
        lambda rng, tags, customer: DemoRun(
            "call-webhook",
            {"url": f"https://hooks.{customer}.com/runwatch"},
            TriggerOptions(tags=tags),
        ),
    ),
    (
        0.06,
        lambda rng, tags, customer: DemoRun(
            "generate-report",
            {"pages": rng.randint(8, 20), "customer": customer},
            TriggerOptions(tags=[*tags, "report"], metadata={"progress": 0}),
        ),
    ),
]


def next_demo_run(rng: random.Random) -> DemoRun:
    customer = rng.choice(CUSTOMERS)
    tags = [f"org_{customer}"]
    pick = rng.random()
    for weight, make in CHOICES:
        if pick < weight:
            return make(rng, tags, customer)
        pick -= weight
    return _order(rng, tags, customer)


def trigger_demo_runs(environment: Environment, count: int, rng: random.Random) -> int:
    """Trigger `count` demo runs (now and then as one batch). Returns how many."""
    demo = [next_demo_run(rng) for _ in range(count)]
    if count > 3 and rng.random() < 0.3:
        batch_trigger(
            environment, [BatchItem(d.task, d.payload, options=d.options) for d in demo]
        )
        return count
    for d in demo:
        trigger(environment, d.task, d.payload, d.options)
    return count


def inventory_burst(environment: Environment, rng: random.Random) -> int:
    """A full resync: more syncs than the inventory queue runs in their short TTL, so
    the last ones expire."""
    items = [
        BatchItem(
            "sync-inventory",
            {"warehouse": warehouse, "full": True},
            options=TriggerOptions(tags=["resync"], ttl="6s"),
        )
        for warehouse in rng.sample(WAREHOUSES, len(WAREHOUSES)) * 2
    ]
    batch_trigger(environment, items)
    return len(items)


def cancel_a_slow_report(environment: Environment) -> bool:
    """What an impatient operator does to a report that is taking long."""
    report = (
        Run.objects.filter(
            environment=environment,
            task_identifier="generate-report",
            status__in=[RunStatus.EXECUTING, RunStatus.QUEUED],
        )
        .order_by("created_at")
        .first()
    )
    return bool(report and cancel_run(report, reason="Canceled by user (demo)"))


def feed_step(environment: Environment, rng: random.Random, tick: int) -> int:
    """One beat of demo traffic; the caller sleeps 1–3 s between beats."""
    triggered = trigger_demo_runs(environment, rng.choice([1, 1, 2, 4]), rng)
    if tick % 40 == 20:
        triggered += inventory_burst(environment, rng)
    if tick % 25 == 24:
        cancel_a_slow_report(environment)
    return triggered
