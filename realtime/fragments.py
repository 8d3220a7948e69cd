"""HTML the live feed sends. Run rows come from the runs list's own partial
(`dashboard.rows`); the rest are the feed's own small fragments."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from django.template.loader import get_template
from django.utils.html import escape

from dashboard.rows import render_run_row
from runs.models import Run

FRAGMENTS = "realtime/_fragments.html"


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


def runs_body(rows: list[str]) -> str:
    """The whole `<tbody id="runs-body">` of a runs list (a snapshot)."""
    inner = "".join(rows) or get_template(f"{FRAGMENTS}#runs-empty").render({})
    return f'<tbody id="runs-body">{inner}</tbody>'


def new_runs_pill(count: int, href: str, *, capped: bool = False) -> str:
    return get_template(f"{FRAGMENTS}#new-runs").render(
        {"count": count, "href": href, "capped": capped}
    )


def live_state(state: str, sequence: int, title: str = "") -> str:
    return (
        f'<div id="live-state" data-state="{state}" data-seq="{sequence}" '
        f'title="{escape(title)}" hidden></div>'
    )
