"""Presentation helpers shared by every dashboard template (and the pushed partials)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django import template
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from dashboard.attributes import Attribute, present_attributes
from runs.querysets import progress_fraction
from runs.statuses import CANCELABLE, DESCRIPTIONS, FAILED, FINISHED, RunStatus

register = template.Library()

# status → (css tone, icon); icons are <symbol>s in templates/dashboard/_icons.html.
STATUS_LOOK = {
    RunStatus.PENDING_VERSION: ("pending", "package"),
    RunStatus.DELAYED: ("pending", "clock"),
    RunStatus.QUEUED: ("queued", "queued"),
    RunStatus.DEQUEUED: ("running", "spinner"),
    RunStatus.EXECUTING: ("running", "spinner"),
    RunStatus.WAITING: ("waiting", "pause"),
    RunStatus.COMPLETED: ("success", "check-circle"),
    RunStatus.CANCELED: ("neutral", "ban"),
    RunStatus.FAILED: ("failure", "x-circle"),
    RunStatus.CRASHED: ("failure", "alert"),
    RunStatus.SYSTEM_FAILURE: ("failure", "alert"),
    RunStatus.EXPIRED: ("neutral", "hourglass"),
    RunStatus.TIMED_OUT: ("failure", "timer"),
    RunStatus.INTERRUPTED: ("failure", "x-circle"),
}

# Other status-like values the dashboard shows (batches, deployments, attempts).
OTHER_TONES = {
    "PENDING": "running",
    "PROCESSING": "running",
    "PARTIAL_FAILED": "failure",
    "ABORTED": "neutral",
    "DEPLOYING": "running",
    "DEPLOYED": "success",
    "RUNNING": "running",
}


@register.simple_tag
@lru_cache(maxsize=256)
def icon(name: str, css: str = "") -> SafeString:
    return format_html(
        '<svg class="icon {}" aria-hidden="true"><use href="#i-{}"></use></svg>',
        css,
        name,
    )


# Badges and icons are pure functions of their arguments: cached, since a page of 100
# rows renders a few hundred of them.
@register.simple_tag
@lru_cache(maxsize=256)
def status_badge(status: str) -> SafeString:
    tone, icon_name = STATUS_LOOK.get(status, ("neutral", "dot"))
    label = RunStatus(status).label if status in RunStatus.values else status
    return format_html(
        '<span class="badge badge-{}" title="{}">{}{}</span>',
        tone,
        DESCRIPTIONS.get(status, ""),
        icon(icon_name, "badge-icon"),
        label,
    )


@register.simple_tag
@lru_cache(maxsize=256)
def state_badge(value: str, label: str = "") -> SafeString:
    """A badge for batch, deployment, attempt and bulk-action statuses."""
    if value in STATUS_LOOK:
        tone, icon_name = STATUS_LOOK[value]
    else:
        tone = OTHER_TONES.get(value, "neutral")
        icon_name = {
            "running": "spinner",
            "success": "check-circle",
            "failure": "x-circle",
        }.get(tone, "dot")
    return format_html(
        '<span class="badge badge-{}">{}{}</span>',
        tone,
        icon(icon_name, "badge-icon"),
        label or value.replace("_", " ").capitalize(),
    )


@register.filter
def status_tone(status: str) -> str:
    return STATUS_LOOK.get(status, ("neutral", ""))[0]


@register.filter
def is_finished(status: str) -> bool:
    return status in FINISHED


@register.filter
def is_cancelable(status: str) -> bool:
    return status in CANCELABLE


@register.filter
def is_failed(status: str) -> bool:
    return status in FAILED


@register.simple_tag
def reltime(value: datetime | None, empty: str = "–") -> SafeString:
    """`<time>` with the exact time on hover; static/js/app.js keeps the text fresh
    and adds the viewer's local time to the tooltip."""
    if value is None:
        return format_html('<span class="muted">{}</span>', empty)
    # Only digits, letters and punctuation from datetime formatting: nothing to escape.
    return mark_safe(
        f'<time datetime="{value.isoformat()}" title="{exact_time(value)}" '
        f"data-relative>{relative_time(value)}</time>"
    )


@register.filter
def exact_time(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(timezone.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def relative_time(value: datetime) -> str:
    seconds = int((timezone.now() - value).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if seconds >= size or unit == "s":
            text = f"{seconds // size}{unit}"
            break
    return f"in {text}" if future else f"{text} ago"


@register.filter
def duration(ms: int | float | timedelta | None) -> str:
    """1234 → "1.2s", 75_000 → "1m 15s"."""
    if ms is None or ms == "":
        return "–"
    if isinstance(ms, timedelta):
        ms = ms.total_seconds() * 1000
    ms = int(ms)
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {seconds}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


@register.filter
def run_duration_ms(run: Any) -> int | None:
    """How long a run ran: its compute time, else finished − started; None if it never started."""
    if run.started_at is None:
        return None
    if run.finished_at is None:
        return None
    if run.duration_ms:
        return run.duration_ms
    return int((run.finished_at - run.started_at).total_seconds() * 1000)


@register.filter
def run_progress(run: Any) -> float | None:
    """The 0–1 progress a run's metadata reports (rows carry just that key)."""
    if "metadata_progress" in run.__dict__:
        return progress_fraction(run.metadata_progress)
    return progress_fraction(
        run.metadata.get("progress") if isinstance(run.metadata, dict) else None
    )


@register.filter
def percent(fraction: float | None) -> str:
    if fraction is None:
        return ""
    return f"{fraction * 100:.0f}%"


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


@register.filter
def short_id(friendly_id: str | None, head: int = 6) -> str:
    """run_wfbie6srcio2es6op2i5ettw8 → run_wfbie6…ettw (the full id goes in a title)."""
    if not friendly_id or len(friendly_id) <= 16:
        return friendly_id or ""
    prefix, _, body = friendly_id.partition("_")
    if head < 6:
        return f"{prefix}_{body[:head]}…"
    return f"{prefix}_{body[:head]}…{body[-4:]}"


@register.filter
def filesize(size: int | None) -> str:
    if size is None:
        return "–"
    for unit, step in (("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= step:
            return f"{size / step:.1f} {unit}"
    return f"{size} B"


@register.filter
def status_description(status: str) -> str:
    return DESCRIPTIONS.get(status, "")


@register.filter
def log_attributes(attributes: Any) -> list[Attribute]:
    """A log line's attributes as the run page shows them (dashboard.attributes)."""
    return present_attributes(attributes)


@register.filter
def millis(value: int | None) -> str:
    """Milliseconds as the shortest readable unit: 500 → "500ms", 60000 → "60s"."""
    if value is None or value == "":
        return "–"
    value = int(value)
    if value < 1000 or value % 1000:
        return f"{value}ms"
    return f"{value // 1000}s"


@register.simple_tag(takes_context=True)
def optional_include(context: template.Context, name: str) -> str:
    """Render `name` with the current context if that template exists: the hook other
    features use to add to a page without editing it (e.g. the bulk-actions button)."""
    try:
        included = get_template(name)
    except TemplateDoesNotExist:
        return ""
    return included.render(context.flatten(), context.get("request"))
