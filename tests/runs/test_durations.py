from __future__ import annotations

import pytest

from runs.durations import (
    InvalidDuration,
    format_duration,
    parse_duration_seconds,
    parse_ttl,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("1h52m18s", 6738), ("2w", 1_209_600), ("1hr", 3600), ("1d", 86400)],
)
def test_durations(text, seconds):
    assert parse_duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "1x", "h1", "1h 2m", "-5s"])
def test_bad_durations(text):
    with pytest.raises(InvalidDuration):
        parse_duration_seconds(text)


def test_ttl_numbers_become_duration_strings():
    assert parse_ttl(5400) == "1h30m"
    assert parse_ttl(0) is None
    assert parse_ttl("15m") == "15m"
    assert format_duration(90061) == "1d1h1m1s"
