"""The demo feed: triggers a varied stream of demo runs into an environment."""

from __future__ import annotations

import random
from dataclasses import dataclass

from runs.models import Environment
from runs.triggering import BatchItem, TriggerOptions, batch_trigger, trigger

CUSTOMERS = ["acme", "globex", "initech", "umbrella", "hooli", "stark"]
WAREHOUSES = ["berlin", "dallas", "osaka", "lagos"]


@dataclass(frozen=True)
class DemoRun:
    task: str
    payload: dict
    options: TriggerOptions


def next_demo_run(rng: random.Random) -> DemoRun:
    customer = rng.choice(CUSTOMERS)
    tags = [f"org_{customer}"]
    pick = rng.random()
    if pick < 0.3:
        order = rng.randint(10_000, 99_999)
        return DemoRun(
            "process-order",
            {"order_id": order, "items": rng.randint(1, 5)},
            TriggerOptions(
                tags=[*tags, f"order_{order}"], idempotency_key=f"order-{order}"
            ),
        )
    if pick < 0.45:
        return DemoRun(
            "sync-inventory",
            {"warehouse": rng.choice(WAREHOUSES)},
            TriggerOptions(tags=tags, queue="inventory"),
        )
    if pick < 0.6:
        return DemoRun(
            "charge-card", {"amount": rng.randint(5, 500)}, TriggerOptions(tags=tags)
        )
    if pick < 0.75:
        return DemoRun(
            "resize-image",
            {"url": f"https://cdn.example.com/{rng.randint(1, 9999)}.png"},
            TriggerOptions(tags=tags, delay=rng.choice([None, None, "5s", "15s"])),
        )
    if pick < 0.9:
        recipients = [
            f"user{rng.randint(1, 999)}@{customer}.com"
            for _ in range(rng.randint(2, 6))
        ]
        return DemoRun(
            "email-campaign", {"recipients": recipients}, TriggerOptions(tags=tags)
        )
    return DemoRun(
        "generate-report",
        {"pages": rng.randint(10, 40), "customer": customer},
        TriggerOptions(tags=[*tags, "report"], metadata={"progress": 0}),
    )


def trigger_demo_runs(environment: Environment, count: int, rng: random.Random) -> int:
    """Trigger `count` demo runs (one batch every so often, like real traffic)."""
    demo = [next_demo_run(rng) for _ in range(count)]
    if count > 3 and rng.random() < 0.2:
        batch_trigger(
            environment, [BatchItem(d.task, d.payload, options=d.options) for d in demo]
        )
        return count
    for d in demo:
        trigger(environment, d.task, d.payload, d.options)
    return count
