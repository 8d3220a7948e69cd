"""The run row: rendered by the runs list page and by the live feed, from one partial.

Nothing per-user or per-request goes into a row, so the live feed renders it once per
change per process and sends the same HTML to every connection watching it.

A page renders up to 100 rows, so a row is cheap to render. `row_values` computes in
Python everything the partial prints, escaped once (URLs without resolving a pattern
per row, times, the badge); the partial is markup, plain lookups and truth tests,
which lets `PrerenderedPartial` render it with the engine once per shape of the
values and fill it in by string joins afterwards (dashboard/prerender.py): ~30 µs a
row, against ~80 µs through the engine with those values and ~230 µs with the
filters, tags, include and `{% url %}` a row had before. The small widgets a row
repeats (tag chips, the progress bar) are partials of their own, rendered once per
distinct value and kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from html import escape as html_escape
from urllib.parse import quote

from django.template.loader import get_template
from django.urls import reverse
from django.utils.safestring import SafeString

from dashboard.prerender import PrerenderedPartial
from dashboard.templatetags.runwatch import (
    duration,
    exact_time,
    icon,
    reltime,
    run_duration_ms,
    run_progress,
    short_id,
    status_badge,
)
from runs.models import Run
from runs.statuses import CANCELABLE, RunStatus

RUN_ROW_TEMPLATE = "runs/_partials.html#run-row"
TAGS_TEMPLATE = "runs/_partials.html#run-tags"
PROGRESS_TEMPLATE = "runs/_partials.html#run-progress"
# The icons the row partial prints, as `icons.<name>`.
ICONS = {name: icon(name) for name in ("copy", "child", "clock", "flask", "more")}
# row_values gives every row the same keys, as PrerenderedPartial requires.
ROW = PrerenderedPartial(RUN_ROW_TEMPLATE, "row", {"icons": ICONS})
_PLACEHOLDER = "ID"
# reverse() quotes arguments with these left as they are (RFC 3986 sub-delims etc.)
_URL_SAFE = "!$&'()*+,;=~:@"


# Printed values are SafeStrings, empty ones too: any other value (a str, an int) is
# escaped again when printed.
EMPTY = SafeString("")
DASH = SafeString("–")


def escaped(value: object) -> SafeString:
    return SafeString(html_escape(str(value)))


def iso(moment: datetime) -> SafeString:
    return SafeString(moment.isoformat())  # digits, letters and punctuation only


@lru_cache(maxsize=256)
def _url_around(name: str, env_slug: str) -> tuple[str, str]:
    """What reverse(name, [env_slug, id]) puts before and after the id."""
    url = reverse(name, args=[env_slug, _PLACEHOLDER])
    before, _, after = url.rpartition(_PLACEHOLDER)
    return before, after


def object_url(name: str, env_slug: str, ident: str) -> SafeString:
    """reverse(name, args=[env_slug, ident]) without resolving the pattern per row."""
    before, after = _url_around(name, env_slug)
    return escaped(f"{before}{quote(ident, safe=_URL_SAFE)}{after}")


@lru_cache(maxsize=4096)
def tag_chips(tags: tuple[str, ...]) -> SafeString:
    return SafeString(get_template(TAGS_TEMPLATE).render({"tags": tags}))


@lru_cache(maxsize=256)
def progress_bar(percent: int, done: bool) -> SafeString:
    return SafeString(
        get_template(PROGRESS_TEMPLATE).render({"percent": percent, "done": done})
    )


def row_values(run: Run, *, stale: bool = False) -> dict:
    """Everything the row partial prints, escaped; `run` from `with_row_columns()`.
    `stale`: the live feed marks a shown run that stopped matching the list's filters."""
    friendly_id = escaped(run.friendly_id)
    env_slug = run.environment.slug
    return {
        "id": friendly_id,
        "short_id": escaped(short_id(run.friendly_id)),
        "href": object_url("dashboard:run", env_slug, run.friendly_id),
        "stale": stale,
        "status": escaped(run.status),
        "badge": status_badge(run.status),
        "created_iso": iso(run.created_at),
        "updated_iso": iso(run.updated_at),
        "created": reltime(run.created_at),
        "task": escaped(run.task_identifier),
        "depth": SafeString(run.depth) if run.depth else EMPTY,
        "version": escaped(run.version) if run.version else DASH,
        **_started(run),
        "tags": tag_chips(tuple(run.tags)) if run.tags else EMPTY,
        "is_test": run.is_test,
        **_batch(run, env_slug),
        "progress": _progress(run),
        "cancelable": run.status in CANCELABLE,
    }


def _started(run: Run) -> dict:
    """The Started and Duration cells: when it started (or until when it is delayed),
    how long it ran (or runs: app.js counts on from `started_iso`)."""
    values = {"started": EMPTY, "started_iso": EMPTY, "finished": False}
    values.update(delayed_iso=EMPTY, delayed_exact=EMPTY, duration=EMPTY)
    if run.started_at is not None:
        values["started"] = reltime(run.started_at)
        values["started_iso"] = iso(run.started_at)
    elif run.status == RunStatus.DELAYED and run.delay_until is not None:
        values["delayed_iso"] = iso(run.delay_until)
        values["delayed_exact"] = SafeString(exact_time(run.delay_until))
    if run.finished_at is not None:
        values["finished"] = True
        values["duration"] = SafeString(duration(run_duration_ms(run)))
    elif run.started_at is not None:
        values["duration"] = SafeString(duration(run.duration_ms))
    return values


def _batch(run: Run, env_slug: str) -> dict:
    if run.batch_id is None:
        return {"batch_id": EMPTY, "batch_short": EMPTY, "batch_href": EMPTY}
    batch_id = run.batch.friendly_id
    return {
        "batch_id": escaped(batch_id),
        "batch_short": escaped(short_id(batch_id, 4)),
        "batch_href": object_url("dashboard:batch", env_slug, batch_id),
    }


def _progress(run: Run) -> SafeString:
    fraction = run_progress(run)
    if fraction is None:
        return EMPTY
    return progress_bar(round(fraction * 100), fraction >= 1)


def render_run_row(run: Run, *, stale: bool = False) -> SafeString:
    return ROW.render(row_values(run, stale=stale))


def render_run_rows(runs: Iterable[Run]) -> SafeString:
    """A page's rows."""
    return SafeString("".join(ROW.render(row_values(run)) for run in runs))
