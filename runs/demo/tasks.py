"""Demo tasks: a realistic mix for a new install's dashboard.

Progress reported through metadata over several seconds (orders, reports), child runs
(a confirmation email per order, a batch of emails per campaign, a fraud check the
payment waits for), random failures that retry (inventory syncs, emails), an
occasional crash (an image resize killed like an out-of-memory process), webhooks
that sometimes hang until their max duration, and reports slow enough to cancel.
`manage.py serve --demo` executes them and feeds them traffic; `manage.py demo` feeds
traffic to workers started with `--demo`.
"""

from __future__ import annotations

import os
import random
import time

from runs.sdk import AbortTaskRunError, logger, metadata, task

FAST_RETRY = {"max_attempts": 3, "min_timeout_ms": 1000, "max_timeout_ms": 8000}


@task(id="process-order", queue="orders")
def process_order(payload, ctx):
    steps = ["validate", "reserve-stock", "charge", "pack", "ship"]
    metadata.set("status", "started").set("progress", 0)
    for index, step in enumerate(steps, start=1):
        time.sleep(random.uniform(0.4, 1.2))
        metadata.set("step", step).set("progress", round(index / len(steps), 2))
        logger.info(f"{step} done", order=payload.get("order_id"), step=index)
    metadata.set("status", "shipped")
    send_email.trigger(
        {"to": payload.get("email", "customer@example.com"), "template": "shipped"},
        tags=[f"order_{payload.get('order_id')}"],
    )
    return {
        "order_id": payload.get("order_id"),
        "tracking": f"TRK{random.randint(100000, 999999)}",
    }


@task(id="send-email", retry=FAST_RETRY)
def send_email(payload, ctx):
    time.sleep(random.uniform(0.2, 0.8))
    if random.random() < 0.1:
        raise ConnectionError(f"SMTP timeout sending to {payload.get('to')}")
    metadata.parent.increment("sent", 1)
    return {"to": payload.get("to"), "message_id": f"<{ctx.run.id}@runwatch.local>"}


@task(id="email-campaign")
def email_campaign(payload, ctx):
    recipients = payload.get("recipients", [])
    metadata.set("total", len(recipients)).set("sent", 0)
    handles = send_email.batch_trigger(
        [{"to": r, "template": "newsletter"} for r in recipients]
    )
    logger.info("queued emails", count=len(handles))
    return {"queued": len(handles)}


@task(id="fraud-check")
def fraud_check(payload, ctx):
    time.sleep(random.uniform(0.3, 1.0))
    score = round(random.random(), 3)
    logger.debug("scored", score=score, amount=payload.get("amount"))
    return {"score": score, "approved": score < 0.9}


@task(id="charge-card", retry=FAST_RETRY)
def charge_card(payload, ctx):
    amount = payload.get("amount", 0)
    if amount <= 0:
        raise AbortTaskRunError(f"Cannot charge {amount}: amounts must be positive")
    verdict = fraud_check.trigger_and_wait({"amount": amount})
    if not verdict["approved"]:
        logger.warn("declined by fraud check", score=verdict["score"])
        return {"charged": False, "score": verdict["score"]}
    metadata.set("charged", amount)
    return {"charged": True, "amount": amount}


@task(
    id="sync-inventory", queue="inventory", queue_concurrency_limit=2, retry=FAST_RETRY
)
def sync_inventory(payload, ctx):
    metadata.set("warehouse", payload.get("warehouse", "main"))
    for batch in range(1, 4):
        time.sleep(random.uniform(0.3, 0.9))
        metadata.set("progress", round(batch / 3, 2))
    if random.random() < 0.35:
        raise RuntimeError("Upstream inventory API returned 503")
    return {"synced": random.randint(50, 500)}


@task(id="resize-image", machine="medium-1x")
def resize_image(payload, ctx):
    time.sleep(random.uniform(0.2, 1.0))
    if random.random() < 0.06:
        os._exit(137)  # what an out-of-memory kill looks like
    return {"sizes": [64, 256, 1024], "source": payload.get("url")}


@task(id="call-webhook", max_duration=5, retry={"max_attempts": 2})
def call_webhook(payload, ctx):
    logger.info("POST", url=payload.get("url"))
    if random.random() < 0.15:
        time.sleep(60)  # the receiver never answers: max duration ends it
    time.sleep(random.uniform(0.1, 0.5))
    return {"status": 200}


@task(
    id="generate-report", queue="reports", queue_concurrency_limit=1, max_duration=120
)
def generate_report(payload, ctx):
    pages = payload.get("pages", 20)
    for page in range(1, pages + 1):
        time.sleep(1.0)
        metadata.set("progress", round(page / pages, 3)).set("page", page)
        if page % 5 == 0:
            logger.info("rendered pages", upto=page, of=pages)
    return {"pages": pages, "url": f"https://reports.example.com/{ctx.run.id}.pdf"}
