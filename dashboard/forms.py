"""Forms of the run actions: Replay and Reschedule dialogs."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.db.models import QuerySet

from dashboard.run_options import RunOptionsForm, queue_choices, ttl_placeholder
from runs import packets
from runs.durations import InvalidDuration, parse_delay_strict
from runs.errors import RunError
from runs.models import Environment, Run
from runs.triggering import (
    MACHINES,
    ReplayOverrides,
    check_metadata_size,
    check_payload_size,
    normalize_tags,
)

VERSION_CURRENT = "current"
VERSION_ORIGINAL = "original"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def parse_json(text: str, what: str) -> Any:
    """JSON text → value, or a ValidationError naming the line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(
            f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None


class ReplayForm(RunOptionsForm):
    """The Replay dialog: the original run's payload, metadata and options, each
    editable. The options shared with the Test page (queue, TTL, priority, keys) are
    validated as it does (dashboard.run_options)."""

    environment = forms.ChoiceField(label="Environment")
    payload = forms.CharField(
        label="Payload", required=False, widget=forms.Textarea(attrs={"rows": 14})
    )
    metadata = forms.CharField(
        label="Metadata", required=False, widget=forms.Textarea(attrs={"rows": 14})
    )
    tags = forms.CharField(label="Tags", required=False)
    version = forms.ChoiceField(
        label="Version",
        choices=[(VERSION_CURRENT, "Current deployment"), (VERSION_ORIGINAL, "")],
        initial=VERSION_CURRENT,
    )
    machine = forms.ChoiceField(label="Machine", required=False)
    delay = forms.CharField(label="Delay", required=False)
    max_attempts = forms.IntegerField(label="Max attempts", required=False, min_value=1)

    def __init__(
        self,
        data: Any = None,
        *,
        run: Run,
        environments: QuerySet[Environment],
        **kwargs: Any,
    ) -> None:
        super().__init__(data, **kwargs)
        self.run = run
        self.environments = {env.slug: env for env in environments}
        self.fields["environment"].choices = [
            (slug, env.label) for slug, env in self.environments.items()
        ]
        self.fields["machine"].choices = [("", f"Original ({run.machine})")] + [
            (m, m) for m in MACHINES
        ]
        self.fields["version"].choices = [
            (VERSION_CURRENT, "Current deployment"),
            (
                VERSION_ORIGINAL,
                f"Original ({run.version})" if run.version else "Original",
            ),
        ]
        queues = queue_choices(run.environment)
        if run.queue not in {name for name, _ in queues}:
            queues.append((run.queue, run.queue))
        self.fields["queue"].choices = queues
        self.payload_editable = run.payload_type != packets.STORE
        self.original_payload = self._payload_text()
        self.initial.update(
            {
                "environment": run.environment.slug,
                "payload": self.original_payload,
                "metadata": pretty(run.seed_metadata or {}),
                "tags": ", ".join(run.tags),
                "queue": run.queue,
                "ttl": run.ttl or "",
                "priority": f"{run.priority_ms / 1000:g}" if run.priority_ms else "",
                "concurrency_key": run.concurrency_key or "",
            }
        )

    def _payload_text(self) -> str:
        if self.run.payload_type == packets.TEXT:
            return self.run.payload
        value = packets.decode_packet(self.run.payload, self.run.payload_type)
        return pretty(value) if self.run.payload else ""

    @property
    def ttl_default(self) -> str:
        return ttl_placeholder(self.run.environment)

    @property
    def payload_is_json(self) -> bool:
        return self.run.payload_type in (packets.JSON, packets.SUPERJSON)

    def clean_environment(self) -> Environment:
        return self.environments[self.cleaned_data["environment"]]

    def clean_payload(self) -> str | None:
        """None keeps the original packet (unchanged or not editable); else the new
        payload serialized as JSON (or as text for text payloads)."""
        text = self.cleaned_data["payload"]
        if not self.payload_editable or text.strip() == self.original_payload.strip():
            return None
        if not self.payload_is_json:
            check = text
        elif not text.strip():
            check = ""
        else:
            check = packets.encode_value(parse_json(text, "The payload"))[0]
        try:
            check_payload_size(check)
        except RunError as exc:
            raise forms.ValidationError(exc.message) from None
        return check

    def clean_metadata(self) -> dict:
        text = self.cleaned_data["metadata"].strip()
        value = parse_json(text, "The metadata") if text else {}
        if not isinstance(value, dict):
            raise forms.ValidationError("The metadata must be a JSON object ({…})")
        try:
            check_metadata_size(value)
        except RunError as exc:
            raise forms.ValidationError(exc.message) from None
        return value

    def clean_tags(self) -> list[str]:
        try:
            return normalize_tags(self.cleaned_data["tags"].split(","))
        except RunError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_delay(self) -> str:
        delay = self.cleaned_data["delay"].strip()
        if delay:
            try:
                parse_delay_strict(delay)
            except InvalidDuration as exc:
                raise forms.ValidationError(
                    f"{exc}. Use a duration such as 30s, 10m or 2h, or a future date."
                ) from None
        return delay

    def overrides(self) -> ReplayOverrides:
        data = self.cleaned_data
        environment = data["environment"]
        same_env = environment.pk == self.run.environment_id
        raw = data["payload"]
        return ReplayOverrides(
            raw_payload=raw,
            payload_type=(
                None
                if raw is None
                else (packets.TEXT if not self.payload_is_json else packets.JSON)
            ),
            metadata=data["metadata"],
            tags=data["tags"],
            machine=data["machine"] or None,
            delay=data["delay"] or None,
            max_attempts=data["max_attempts"],
            queue=data["queue"] or None,
            ttl=data["ttl"],
            priority=data["priority"],
            # prefilled with the original's: emptied, the replay has none
            concurrency_key=data["concurrency_key"],
            idempotency_key=data["idempotency_key"] or None,
            idempotency_key_ttl=data["idempotency_key_ttl"] or None,
            version=(
                self.run.version
                if data["version"] == VERSION_ORIGINAL and same_env
                else ""
            ),
            environment=environment,
        )


class RescheduleForm(forms.Form):
    delay = forms.CharField(
        label="Run it",
        help_text="A duration from now (30s, 10m, 2h, 1d) or a date and time (ISO 8601, UTC).",
        max_length=100,
    )
