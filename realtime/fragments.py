"""HTML the live feed sends. Run rows come from the runs list's own partial
(`dashboard.rows`); the rest are the feed's own small fragments."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from django.template.loader import get_template, render_to_string
from django.utils.html import escape

from dashboard.bulk_presenters import (
    render_bulk_row,
    render_bulk_summary,
    render_latest_items,
)
from dashboard.presenters import (
    EVENT_KINDS,
    EVENT_LIMIT,
    EVENT_ROW_TEMPLATE,
    render_deployments_rows,
    render_env_counters,
)
from dashboard.rows import render_run_row
from realtime.coalesce import Fragment
from runs.models import BulkAction, Environment, Run, RunEvent

FRAGMENTS = "realtime/_fragments.html"
RUNS_COUNT = "dashboard/_runs_table_body.html#runs-count"
RUNS_EMPTY = "dashboard/_runs_table_body.html#runs-empty"


class RowCache:
    """Rendered rows by (run id, version, stale): a run's row is rendered once per
    change per process, however many connections show it."""

    def __init__(self, size: int = 5000) -> None:
        self.size = size
        self._rows: OrderedDict[tuple[int, datetime, bool], str] = OrderedDict()
        self.renders = 0

    def row(self, run: Run, *, stale: bool = False) -> str:
        key = (run.pk, run.updated_at, stale)
        html = self._rows.get(key)
        if html is None:
            html = self._rows[key] = render_run_row(run, stale=stale)
            self.renders += 1
            if len(self._rows) > self.size:
                self._rows.popitem(last=False)
        return html


def runs_body(rows: list[str], environment: Environment, *, filtered: bool) -> str:
    """The whole `<tbody id="runs-body">` of a runs list (a snapshot); without rows,
    the page's own empty state (no run matches, or none in the environment yet)."""
    inner = "".join(rows) or get_template(RUNS_EMPTY).render(
        {"environment": environment, "filtered": filtered}
    )
    return f'<tbody id="runs-body">{inner}</tbody>'


@lru_cache(maxsize=128)
def runs_count(count: int) -> str:
    """The runs list's "N runs on this page" (`#runs-count`), as the page renders it."""
    return get_template(RUNS_COUNT).render({"count": count})


def new_runs_pill(count: int, href: str, *, capped: bool = False) -> str:
    return get_template(f"{FRAGMENTS}#new-runs").render(
        {"count": count, "href": href, "capped": capped}
    )


def live_state(
    state: str, sequence: int, title: str = "", *, ack: bool = False, watch: int = 0
) -> str:
    """The feed's state (open / down) and the message's sequence number; `ack` asks
    the client to acknowledge this message (flow control, see realtime.coalesce);
    `watch` is the number of the page's last watch change the message answers
    (static/js/app.js drops messages meant for what the page showed before)."""
    ask = " data-ack" if ack else ""
    return (
        f'<div id="live-state" data-state="{state}" data-seq="{sequence}"{ask} '
        f'data-watch="{watch}" title="{escape(title)}" hidden></div>'
    )


def load_run_page(run_id: int) -> Run | None:
    """The run as the run page view loads it."""
    return (
        Run.objects.select_related(
            "environment", "batch", "parent", "root", "replayed_from"
        )
        .filter(pk=run_id)
        .first()
    )


def _event_rows(events: list[RunEvent]) -> tuple[str, int]:
    html = "".join(render_to_string(EVENT_ROW_TEMPLATE, {"event": e}) for e in events)
    return html, events[-1].pk if events else 0


def latest_event_rows(run: Run) -> tuple[str, int]:
    """The history rows the run page shows (its latest events), and the last id."""
    latest = RunEvent.objects.filter(run=run, kind__in=EVENT_KINDS).order_by("-id")
    return _event_rows(list(reversed(latest[:EVENT_LIMIT])))


def event_rows_after(run_id: int, after_id: int) -> tuple[str, int]:
    """History rows to append after `after_id` (at most a page's worth), and the
    last id they include."""
    events = RunEvent.objects.filter(
        run_id=run_id, kind__in=EVENT_KINDS, pk__gt=after_id
    ).order_by("id")[:EVENT_LIMIT]
    return _event_rows(list(events))


def env_counters(environment_id: int) -> str:
    """The header's `#env-counters` of an environment."""
    return render_env_counters(Environment.objects.get(pk=environment_id))


def load_bulk_action(bulk_id: int) -> BulkAction | None:
    return (
        BulkAction.objects.select_related("environment", "created_by", "aborted_by")
        .filter(pk=bulk_id)
        .first()
    )


def bulk_page_fragments(bulk: BulkAction) -> list[tuple[str, Fragment]]:
    """The bulk action page's summary and latest processed runs (a <tbody>)."""
    return [
        ("bulk-items", Fragment(render_latest_items(bulk, oob=True), table=True)),
        ("bulk-summary", Fragment(render_bulk_summary(bulk, oob=True))),
    ]


@dataclass(frozen=True)
class BulkRow:
    """A bulk action's row of the bulk actions list (the bare <tr>)."""

    html: str
    friendly_id: str
    created_at: datetime

    @classmethod
    def of(cls, bulk: BulkAction) -> BulkRow:
        return cls(render_bulk_row(bulk), bulk.friendly_id, bulk.created_at)


def deployments_fragments(environment_id: int) -> list[tuple[str, Fragment]]:
    environment = Environment.objects.get(pk=environment_id)
    return [("deployments", Fragment(render_deployments_rows(environment), table=True))]
