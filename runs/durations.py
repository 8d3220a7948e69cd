"""Duration strings as Trigger.dev writes them: "30s", "1h52m18s", "2w", "1hr"."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "hr": 3_600, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(r"^(?:\d+(?:w|d|hr|h|m|s))+$")
_PART = re.compile(r"(\d+)(w|d|hr|h|m|s)")


class InvalidDuration(ValueError):
    pass


def parse_duration_seconds(text: str) -> int:
    """Seconds in a duration string; raises InvalidDuration for anything else."""
    value = text.strip()
    if not value or len(value) > 100 or not _DURATION.match(value):
        raise InvalidDuration(
            f"Invalid duration: {text!r} (use e.g. 30s, 10m, 1h30m, 2d, 1w)"
        )
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(value))


def format_duration(seconds: int) -> str:
    """5400 → "1h30m"; the inverse of parse_duration_seconds for whole units."""
    parts = []
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def parse_delay(
    value: str | datetime | None, *, now: datetime | None = None
) -> datetime | None:
    """When a delayed run becomes due, or None for "now".

    Trigger.dev ignores past dates and unparsable strings on trigger (the run is not delayed);
    `parse_delay_strict` is the variant for reschedule and forms, which rejects them.
    """
    try:
        return parse_delay_strict(value, now=now)
    except InvalidDuration:
        return None


def parse_delay_strict(
    value: str | datetime | None, *, now: datetime | None = None
) -> datetime | None:
    now = now or timezone.now()
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        when = (
            value
            if timezone.is_aware(value)
            else timezone.make_aware(value, timezone.UTC)
        )
    else:
        text = str(value).strip()
        if _DURATION.match(text):
            return now + timedelta(seconds=parse_duration_seconds(text))
        when = _parse_datetime(text)
        if when is None:
            raise InvalidDuration(
                f"Invalid delay: {value} (use e.g. 30s, 10m, 1h30m, 2d or a future "
                "ISO-8601 date)"
            )
        if timezone.is_naive(when):
            when = timezone.make_aware(when, timezone.UTC)
    if when <= now:
        raise InvalidDuration(f"Invalid delay: {value} is in the past")
    return when


def _parse_datetime(text: str) -> datetime | None:
    try:
        return parse_datetime(text)
    except ValueError:  # well formatted but not a date (month 13, hour 25)
        return None


def parse_ttl(value: str | int | float | None) -> str | None:
    """Normalise a TTL to a duration string; None or 0 means no TTL. Negative → InvalidDuration."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidDuration(
            "Invalid ttl: expected a duration string or a number of seconds"
        )
    if isinstance(value, int | float):
        if value < 0:
            raise InvalidDuration(
                "Invalid ttl: must be a non-negative number of seconds"
            )
        return format_duration(int(value)) if int(value) > 0 else None
    text = str(value).strip()
    if text.isdigit():
        return parse_ttl(int(text))
    parse_duration_seconds(text)
    return text


IDEMPOTENCY_KEY_TTL_DEFAULT = timedelta(days=30)


def parse_idempotency_ttl(value: str | None) -> timedelta:
    """`idempotencyKeyTTL` (`^\\d+[smhd]$`); anything else falls back to the 30-day default."""
    try:
        ttl = parse_idempotency_ttl_strict(value)
    except InvalidDuration:
        return IDEMPOTENCY_KEY_TTL_DEFAULT
    return IDEMPOTENCY_KEY_TTL_DEFAULT if ttl is None else ttl


def parse_idempotency_ttl_strict(value: str | None) -> timedelta | None:
    """The variant for forms: None when blank, InvalidDuration when not `^\\d+[smhd]$`."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not re.fullmatch(r"\d+[smhd]", text):
        raise InvalidDuration(
            f"Invalid idempotency key TTL: {value!r} (a number and one unit: s, m, h or d, e.g. 1h)"
        )
    return timedelta(seconds=parse_duration_seconds(text))
