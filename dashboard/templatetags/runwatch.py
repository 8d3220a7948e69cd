"""Presentation helpers shared by every dashboard template (and the pushed partials)."""

from __future__ import annotations

import json
from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html

from runs.statuses import DESCRIPTIONS, FAILED, FINISHED, RunStatus

register = template.Library()

# status → (css tone, icon name); icons are drawn by CSS from the tone + symbol.
_TONES = {
    RunStatus.PENDING_VERSION: ("pending", "◔"),
    RunStatus.DELAYED: ("pending", "◷"),
    RunStatus.QUEUED: ("queued", "○"),
    RunStatus.DEQUEUED: ("running", "◐"),
    RunStatus.EXECUTING: ("running", "◐"),
    RunStatus.WAITING: ("waiting", "◑"),
    RunStatus.COMPLETED: ("success", "✓"),
    RunStatus.CANCELED: ("neutral", "⊘"),
    RunStatus.FAILED: ("failure", "✕"),
    RunStatus.CRASHED: ("failure", "✕"),
    RunStatus.SYSTEM_FAILURE: ("failure", "✕"),
    RunStatus.EXPIRED: ("neutral", "⌛"),
    RunStatus.TIMED_OUT: ("failure", "⏱"),
    RunStatus.INTERRUPTED: ("failure", "✕"),
}


@register.simple_tag
def status_badge(status: str) -> str:
    tone, icon = _TONES.get(status, ("neutral", "•"))
    label = RunStatus(status).label if status in RunStatus.values else status
    return format_html(
        '<span class="badge badge-{}" title="{}"><span class="badge-icon" aria-hidden="true">{}</span>{}</span>',
        tone,
        DESCRIPTIONS.get(status, ""),
        icon,
        label,
    )


@register.filter
def is_finished(status: str) -> bool:
    return status in FINISHED


@register.filter
def is_failed(status: str) -> bool:
    return status in FAILED


@register.simple_tag
def reltime(value: datetime | None, empty: str = "–") -> str:
    """`<time>` with the exact UTC time on hover; static/js/app.js keeps the text fresh."""
    if value is None:
        return format_html('<span class="muted">{}</span>', empty)
    return format_html(
        '<time datetime="{}" title="{}" data-relative>{}</time>',
        value.isoformat(),
        value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC",
        _relative(value),
    )


def _relative(value: datetime) -> str:
    seconds = int((timezone.now() - value).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if seconds >= size or unit == "s":
            text = f"{seconds // size}{unit}"
            break
    return f"in {text}" if future else f"{text} ago"


@register.filter
def duration(ms: int | None) -> str:
    """1234 → "1.2s", 75_000 → "1m 15s"."""
    if ms is None:
        return "–"
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
    return f"{hours}h {minutes}m"


@register.filter
def percent(fraction: float | None) -> str:
    if fraction is None:
        return ""
    return f"{fraction * 100:.0f}%"


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
