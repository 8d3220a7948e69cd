"""Trigger options the Test page and the Replay dialog share: queue, TTL, priority,
concurrency key, idempotency key and its TTL. One set of fields, so both reject the
same input with the same words (which come from runs.durations and runs.triggering,
as the API's do)."""

from __future__ import annotations

from django import forms

from runs.durations import (
    InvalidDuration,
    parse_duration_seconds,
    parse_idempotency_ttl_strict,
    parse_ttl,
)
from runs.models import Queue, Run
from runs.triggering import PRIORITY_MS_RANGE, default_ttl

MAX_PRIORITY_SECONDS = PRIORITY_MS_RANGE[1] // 1000


def max_length(field: str) -> int:
    return Run._meta.get_field(field).max_length


def seconds(text: str) -> float:
    """A number of seconds ("90", "1.5") or a duration string ("5m", "1h30m")."""
    try:
        return float(text)
    except ValueError:
        return parse_duration_seconds(text)


def ttl_placeholder(environment) -> str:
    """What an empty TTL field means in this environment."""
    ttl = default_ttl(environment)
    return f"{ttl} (dev default)" if ttl else "None"


def queue_choices(environment) -> list[tuple[str, str]]:
    """The environment's queues as (name, label) choices, paused ones marked."""
    return [
        (name, f"{name} (paused)" if paused else name)
        for name, paused in Queue.objects.filter(environment=environment)
        .order_by("name")
        .values_list("name", "paused")
    ]


class RunOptionsForm(forms.Form):
    """The shared option fields and their rules. A subclass sets the queue choices
    and turns the cleaned values into TriggerOptions or ReplayOverrides."""

    queue = forms.ChoiceField(required=False)
    ttl = forms.CharField(required=False)
    priority = forms.CharField(required=False)
    concurrency_key = forms.CharField(
        required=False, max_length=max_length("concurrency_key")
    )
    idempotency_key = forms.CharField(
        required=False, max_length=max_length("idempotency_key")
    )
    idempotency_key_ttl = forms.CharField(required=False)

    def clean_ttl(self) -> str | None:
        try:
            return parse_ttl(self.cleaned_data["ttl"].strip())
        except InvalidDuration as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_priority(self) -> float:
        text = self.cleaned_data["priority"].strip()
        if not text:
            return 0
        message = f"Priority must be a number of seconds between 0 and {MAX_PRIORITY_SECONDS} (e.g. 10 or 1h)"
        try:
            value = seconds(text)
        except InvalidDuration:
            raise forms.ValidationError(message) from None
        if not 0 <= value <= MAX_PRIORITY_SECONDS:
            raise forms.ValidationError(message)
        return value

    def clean_idempotency_key_ttl(self) -> str:
        text = self.cleaned_data["idempotency_key_ttl"].strip()
        try:
            parse_idempotency_ttl_strict(text)
        except InvalidDuration as exc:
            raise forms.ValidationError(str(exc)) from None
        return text

    def clean(self) -> dict:
        data = super().clean()
        if data.get("idempotency_key_ttl") and not data.get("idempotency_key"):
            self.add_error(
                "idempotency_key_ttl", "Set an idempotency key to give it a TTL"
            )
        return data
