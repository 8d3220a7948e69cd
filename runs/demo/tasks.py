"""Demo tasks: a realistic mix for a new install's dashboard.

Progress reported through metadata over several seconds, child runs (batch and
trigger_and_wait), random failures that retry, an occasional crash, and a long run
worth canceling. `manage.py serve --demo` executes them and `manage.py demo`
keeps triggering them.
"""

from __future__ import annotations

import os
import random
import time

from runs.sdk import logger, metadata, task

FAST_RETRY = {
    "maxAttempts": 3,
    "factor": 2,
    "minTimeoutInMs": 1000,
    "maxTimeoutInMs": 8000,
}


@task(id="process-order", queue="orders")
def process_order(payload, ctx):
    steps = ["validate", "reserve-stock", "charge", "pack", "ship"]
    metadata.set("status", "started").set("progress", 0)
    for index, step in enumerate(steps, start=1):
        time.sleep(random.uniform(0.4, 1.2))
        metadata.set("step", step).set("progress", round(index / len(steps), 2))
        logger.info(f"{step} done", order=payload.get("order_id"), step=index)
    metadata.set("status", "shipped")
    return {
        "order_id": payload.get("order_id"),
        "tracking": f"TRK{random.randint(100000, 999999)}",
    }


@task(id="send-email")
def send_email(payload, ctx):
    time.sleep(random.uniform(0.2, 0.8))
    metadata.parent.increment("sent", 1)
    if random.random() < 0.1:
        raise ConnectionError(f"SMTP timeout sending to {payload.get('to')}")
    return {"to": payload.get("to"), "message_id": f"<{ctx.run.id}@runwatch.local>"}


@task(id="email-campaign")
def email_campaign(payload, ctx):
    recipients = payload.get("recipients", [])
    metadata.set("total", len(recipients)).set("sent", 0)
    handles = send_email.batch_trigger(
        [{"to": r} for r in recipients], tags=["campaign"]
    )
    logger.info("queued emails", count=len(handles))
    return {"queued": len(handles)}


@task(id="fraud-check")
def fraud_check(payload, ctx):
    time.sleep(random.uniform(0.3, 1.0))
    score = round(random.random(), 3)
    logger.debug("scored", score=score)
    return {"score": score, "approved": score < 0.9}


@task(id="charge-card", retry=FAST_RETRY)
def charge_card(payload, ctx):
    verdict = fraud_check.trigger_and_wait({"amount": payload.get("amount")})
    if not verdict["approved"]:
        logger.warn("declined by fraud check", score=verdict["score"])
        return {"charged": False, "score": verdict["score"]}
    metadata.set("charged", payload.get("amount"))
    return {"charged": True, "amount": payload.get("amount")}


@task(id="sync-inventory", retry=FAST_RETRY)
def sync_inventory(payload, ctx):
    metadata.set("warehouse", payload.get("warehouse", "main"))
    for batch in range(1, 4):
        time.sleep(random.uniform(0.2, 0.6))
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


@task(id="generate-report", max_duration=600)
def generate_report(payload, ctx):
    pages = payload.get("pages", 40)
    for page in range(1, pages + 1):
        time.sleep(1.5)
        metadata.set("progress", round(page / pages, 3)).set("page", page)
        if page % 10 == 0:
            logger.info("rendered pages", upto=page)
    return {"pages": pages, "url": f"https://reports.example.com/{ctx.run.id}.pdf"}
