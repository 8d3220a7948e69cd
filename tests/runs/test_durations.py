from __future__ import annotations

import pytest
from django.test import Client

from runs.durations import (
    InvalidDuration,
    format_duration,
    parse_delay,
    parse_delay_strict,
    parse_duration_seconds,
    parse_ttl,
)
from runs.models import Run
from runs.statuses import RunStatus


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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "Invalid delay: soon (use e.g. 30s"),
        ("2030-13-45T10:00:00", "Invalid delay: 2030-13-45T10:00:00 (use"),
        ("2000-01-01T00:00:00Z", "Invalid delay: 2000-01-01T00:00:00Z is in the past"),
    ],
)
def test_bad_delays_say_what_is_wrong(text, message):
    with pytest.raises(InvalidDuration) as error:
        parse_delay_strict(text)
    assert str(error.value).startswith(message)
    assert parse_delay(text) is None  # on trigger, Trigger.dev ignores them


@pytest.mark.django_db
def test_a_trigger_with_an_impossible_date_as_delay_is_not_delayed(dev, deploy):
    deploy(dev, "a")
    api = Client()
    response = api.post(
        "/api/v1/tasks/a/trigger",
        {"payload": {}, "options": {"delay": "2030-13-45T10:00:00"}},
        content_type="application/json",
        headers={"authorization": f"Bearer {dev.api_key}"},
    )
    assert response.status_code == 200, response.content
    assert Run.objects.get().status == RunStatus.QUEUED
