"""Keyset pagination over (created_at, id), newest first. Never OFFSET, never COUNT(*)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Q, QuerySet


class InvalidCursor(ValueError):
    pass


def encode_cursor(created_at: datetime, pk: int) -> str:
    micros = int(created_at.timestamp() * 1_000_000)
    raw = json.dumps({"c": micros, "r": pk}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        created = datetime.fromtimestamp(int(data["c"]) / 1_000_000, tz=UTC)
        return created, int(data["r"])
    except (ValueError, KeyError, TypeError, binascii.Error, OverflowError, OSError):
        raise InvalidCursor(f"Invalid cursor: {cursor[:40]!r}") from None


# The keyset columns: a run's (created_at, id). A queryset may page by another table's
# copy of them instead, annotated as ANNOTATED_KEYS: the ORDER BY and the cursor bounds
# then use that table's columns, so PostgreSQL can walk its index in page order (the
# tag filter pages by RunTag's rows, see RunFilter.filter_tag). Cursors are the same
# either way, since the values are.
KEYS = ("created_at", "pk")
ANNOTATED_KEYS = ("page_created_at", "page_id")


def page_keys(qs: QuerySet) -> tuple[str, str]:
    return ANNOTATED_KEYS if ANNOTATED_KEYS[0] in qs.query.annotations else KEYS


@dataclass
class Page:
    items: list
    next_cursor: str | None  # older rows exist
    previous_cursor: str | None  # newer rows exist


def paginate(
    qs: QuerySet, *, size: int, after: str | None = None, before: str | None = None
) -> Page:
    """One page of `qs` ordered by (-created_at, -id). `after` moves to older rows,
    `before` to newer ones; cursors come from a previous Page."""
    if after and before:
        raise InvalidCursor("Use either an after or a before cursor, not both")
    created_key, id_key = page_keys(qs)
    if before:
        created, pk = decode_cursor(before)
        rows = list(
            # sargable: the index scan starts here
            qs.filter(**{f"{created_key}__gte": created})
            .filter(
                Q(**{f"{created_key}__gt": created})
                | Q(**{created_key: created, f"{id_key}__gt": pk})
            )
            .order_by(created_key, id_key)[: size + 1]
        )
        has_more = len(rows) > size
        items = list(reversed(rows[:size]))
        return Page(
            items=items,
            next_cursor=_cursor(items[-1]) if items else None,
            previous_cursor=_cursor(items[0]) if has_more else None,
        )
    if after:
        created, pk = decode_cursor(after)
        # The redundant `created_at <= c` bounds the index scan; the OR alone would make
        # PostgreSQL walk every newer row first (deep pages in linear time).
        qs = qs.filter(**{f"{created_key}__lte": created}).filter(
            Q(**{f"{created_key}__lt": created})
            | Q(**{created_key: created, f"{id_key}__lt": pk})
        )
    rows = list(qs.order_by(f"-{created_key}", f"-{id_key}")[: size + 1])
    has_more = len(rows) > size
    items = rows[:size]
    return Page(
        items=items,
        next_cursor=_cursor(items[-1]) if has_more else None,
        previous_cursor=_cursor(items[0]) if after and items else None,
    )


def _cursor(row) -> str:
    return encode_cursor(row.created_at, row.pk)
