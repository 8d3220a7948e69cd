"""Request receipts: the first answer to a request a client may retry, stored with
the work it did, so that a retry gets the same answer and never does the work twice.

The SDK sends `x-trigger-request-idempotency-key` with every trigger and batch call
(one UUID for all retries of one logical call). The answer (`IdempotentRequest`) is
written by the same statement or transaction as the run: either both exist or
neither, and of two racing attempts with one key, one fails on the table's unique
key and writes nothing. Answers older than `RUNWATCH_REQUEST_IDEMPOTENCY_TTL_SECONDS`
no longer count (the SDK retries within about 40 s); they are replaced when their
key comes again and pruned as new ones are stored.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from runs.models import Environment, IdempotentRequest

if TYPE_CHECKING:
    from runs.models import Run

PRUNE_EVERY = 200  # on average, one store in this many also deletes expired answers


@dataclass(frozen=True)
class Receipt:
    """What to store under `key` once a trigger is done: `answer(run, cached)` gives
    the (status code, JSON body) the caller is sent."""

    key: str
    answer: Callable[[Run, bool], tuple[int, Any]]


class AlreadyAnswered(Exception):
    """The receipt's key already holds a live answer; nothing was written."""

    def __init__(self, stored: IdempotentRequest) -> None:
        super().__init__(stored.key)
        self.stored = stored


def cutoff() -> datetime:
    """Answers stored before this are expired."""
    ttl = timedelta(seconds=settings.RUNWATCH_REQUEST_IDEMPOTENCY_TTL_SECONDS)
    return timezone.now() - ttl


def live_answer(environment: Environment, key: str) -> IdempotentRequest | None:
    """The stored answer for `key`, or None; an expired one is deleted on the way."""
    row = IdempotentRequest.objects.filter(environment=environment, key=key).first()
    if row is not None and row.created_at < cutoff():
        row.delete()
        return None
    return row


def store(environment: Environment, receipt: Receipt, run: Run, cached: bool) -> None:
    """Store the receipt's answer for this run (see `save_answer`), after checking
    that no live answer holds its key (a retry, the common case of a held key)."""
    raise_if_answered(environment, receipt.key)
    status, body = receipt.answer(run, cached)
    save_answer(environment, receipt.key, status, body)


def save_answer(environment: Environment, key: str, status: int, body: Any) -> None:
    """Store an answer inside the caller's transaction; AlreadyAnswered (the
    caller's transaction must then roll back) when a live answer holds the key. The
    caller has looked for one already (`live_answer`, or `store`): here only a racing
    attempt's answer can hold it."""
    try:
        with transaction.atomic():  # a savepoint: a racing attempt's commit wins
            IdempotentRequest.objects.create(
                environment=environment, key=key, status_code=status, body=body
            )
    except IntegrityError:
        raise_if_answered(environment, key)
        raise


def raise_if_answered(environment: Environment, key: str) -> None:
    """AlreadyAnswered when a live answer holds `key` (e.g. after a unique-key
    error: a racing attempt with the same key committed first)."""
    stored = live_answer(environment, key)
    if stored is not None:
        raise AlreadyAnswered(stored)


def maybe_prune() -> None:
    """Now and then (one call in PRUNE_EVERY), delete expired answers."""
    if random.randrange(PRUNE_EVERY) == 0:
        prune_expired()


def prune_expired() -> int:
    """Delete stored answers past their TTL (an index range scan)."""
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=cutoff()).delete()
    return deleted
