"""Bulk action fragments: what the bulk pages render and the live feed re-renders.

Nothing here reads the request or the user, so the live feed can render a bulk
action's fragments once per change and send the same HTML to every connection.
`render_bulk_fragments` returns out-of-band swaps for every element that shows a bulk
action (its page's summary and newest items, its row in the bulk actions list), each
with an id that names the bulk action; a page ignores the ones it does not show.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.template.loader import render_to_string
from django.urls import reverse

from runs.models import BulkAction, BulkActionItem, BulkActionType
from runs.pagination import Page, paginate

ITEMS_PAGE_SIZE = 25
ITEM_COLUMNS = (
    "id",
    "created_at",
    "outcome",
    "message",
    "processed_at",
    "run__friendly_id",
    "run__task_identifier",
    "run__status",
    "new_run__friendly_id",
    "new_run__status",
)


@dataclass(frozen=True)
class Segment:
    key: str
    tone: str
    label: str
    count: int
    width: str  # CSS percentage of the targeted runs


def _percent(part: int, whole: int) -> str:
    return f"{min(100.0, part * 100 / whole):.2f}%" if whole else "0%"


def bulk_context(bulk: BulkAction) -> dict:
    """The summary's numbers: stacked progress segments, percentage, words."""
    cancel = bulk.type == BulkActionType.CANCEL
    whole = max(bulk.targeted, bulk.processed)
    segments = [
        Segment(
            "succeeded",
            "success",
            "canceled" if cancel else "replayed",
            bulk.succeeded,
            _percent(bulk.succeeded, whole),
        ),
        Segment(
            "skipped",
            "neutral",
            "skipped (already finished)",
            bulk.skipped,
            _percent(bulk.skipped, whole),
        ),
        Segment(
            "failed",
            "failure",
            "failed",
            bulk.failed,
            _percent(bulk.failed, whole),
        ),
    ]
    done = bulk.processed >= whole or not bulk.is_active
    return {
        "bulk": bulk,
        "env_slug": bulk.environment.slug,
        "segments": [s for s in segments if s.count or s.key == "succeeded"],
        "fraction": 1.0 if done else (bulk.processed / whole if whole else 0.0),
        "remaining": max(0, whole - bulk.processed) if bulk.is_active else 0,
        # Runs that had left the filter (e.g. their status) by the time it got there.
        "unmatched": max(0, bulk.targeted - bulk.processed)
        if bulk.status == "COMPLETED"
        else 0,
        "not_reached": max(0, bulk.targeted - bulk.processed)
        if bulk.status == "ABORTED"
        else 0,
        "runs_url": reverse("dashboard:runs", args=[bulk.environment.slug])
        + f"?bulk_action={bulk.friendly_id}&period=all",
        "status_label": _status_label(bulk),
        "filter_query": urlencode(bulk.params.get("filter", {}), doseq=True),
        "actor": _actor(bulk.created_by, bulk.created_via),
        "aborter": _actor(bulk.aborted_by, bulk.aborted_via)
        if bulk.status == "ABORTED"
        else "",
    }


def _status_label(bulk: BulkAction) -> str:
    return {
        "PENDING": "Pending",
        "RUNNING": "In progress",
        "COMPLETED": "Completed",
        "ABORTED": "Aborted",
    }[bulk.status]


def _actor(user, via: str) -> str:
    if user is not None:
        return user.get_username()
    return "API key" if via == "api" else "Unknown user"


def items_page(
    bulk: BulkAction, *, after: str | None = None, before: str | None = None
) -> Page:
    """The runs the bulk action processed, latest first, a keyset page at a time."""
    items = BulkActionItem.objects.filter(bulk_action=bulk).select_related(
        "run", "new_run"
    )
    return paginate(
        items.only(*ITEM_COLUMNS), size=ITEMS_PAGE_SIZE, after=after, before=before
    )


def render_bulk_summary(bulk: BulkAction, *, oob: bool = False) -> str:
    return render_to_string(
        "dashboard/_bulk_summary.html", {**bulk_context(bulk), "oob": oob}
    )


def render_bulk_row(bulk: BulkAction, *, oob: bool = False) -> str:
    html = render_to_string("dashboard/_bulk_row.html", bulk_context(bulk))
    if not oob:
        return html
    # Table rows cannot stand alone in a message: a <tbody data-live-unwrap> carries
    # the row and is replaced by it (static/js/app.js).
    return (
        f'<tbody data-live-unwrap hx-swap-oob="outerHTML:#bulk-row-{bulk.friendly_id}">'
        f"{html}</tbody>"
    )


def render_latest_items(bulk: BulkAction, *, oob: bool = False) -> str:
    """The newest processed runs: the first page of the bulk action page's table."""
    return render_to_string(
        "dashboard/_bulk_items_body.html",
        {
            "bulk": bulk,
            "env_slug": bulk.environment.slug,
            "items": items_page(bulk).items,
            "latest": True,
            "oob": oob,
        },
    )


def render_bulk_fragments(bulk: BulkAction) -> str:
    """Every live fragment of `bulk`, as htmx out-of-band swaps."""
    bulk = BulkAction.objects.select_related(
        "environment", "created_by", "aborted_by"
    ).get(pk=bulk.pk)
    return (
        render_bulk_summary(bulk, oob=True)
        + render_bulk_row(bulk, oob=True)
        + render_latest_items(bulk, oob=True)
    )
