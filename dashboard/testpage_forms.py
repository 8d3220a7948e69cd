"""The Test page's form: payload, metadata and trigger options.

Every rule and message comes from the services (`runs.triggering`, `runs.durations`):
this module only turns form strings into the values they check, so the dashboard and
the API reject the same input with the same words.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django import forms
from django.conf import settings

from dashboard.run_options import RunOptionsForm, ttl_placeholder
from dashboard.run_options import seconds as duration_seconds
from runs import packets
from runs.durations import (
    InvalidDuration,
    format_duration,
    parse_delay_strict,
)
from runs.errors import RunError
from runs.models import (
    Environment,
    Run,
    TaskDefinition,
    TestTemplate,
)
from runs.triggering import (
    MACHINES,
    MAX_DURATION_RANGE,
    TriggerOptions,
    check_max_attempts,
    check_metadata_size,
    check_payload_size,
    normalize_tags,
)

# The options a template stores and a previous run reloads, besides payload and metadata.
OPTION_FIELDS = (
    "version",
    "queue",
    "machine",
    "tags",
    "max_attempts",
    "max_duration",
    "delay",
    "ttl",
    "priority",
    "concurrency_key",
    "idempotency_key",
    "idempotency_key_ttl",
)

# Service error fields (API names) → form fields.
_SERVICE_FIELDS = {
    "payload": "payload",
    "metadata": "metadata",
    "tags": "tags",
    "ttl": "ttl",
    "machine": "machine",
    "maxAttempts": "max_attempts",
    "version": "version",
}

FORM_ID = "test-form"


def _reject_constant(name: str) -> None:
    raise ValueError(f"Invalid JSON: {name} is not a JSON value")


def _finite_float(text: str) -> float:
    # 1e400 parses as inf, which would be stored as the non-JSON token Infinity.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"Invalid JSON: the number {text} is too large")
    return value


def parse_json(text: str) -> Any:
    """The value of a JSON editor; blank means {} (as Trigger.dev's Test page does)."""
    if not text.strip():
        return {}
    try:
        return json.loads(
            text, parse_constant=_reject_constant, parse_float=_finite_float
        )
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(
            f"Invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except ValueError as exc:
        raise forms.ValidationError(str(exc)) from None
    except RecursionError:
        raise forms.ValidationError("Invalid JSON: nested too deeply") from None


def _service_check(check, *args) -> None:
    """Run a `runs.triggering` check; its message becomes the field's error."""
    try:
        check(*args)
    except RunError as exc:
        raise forms.ValidationError(exc.message) from None


class TagsWidget(forms.Widget):
    """Several `tags` values (one per chip); each may also hold comma-separated tags."""

    def value_from_datadict(self, data, files, name: str) -> list[str]:
        getlist = getattr(data, "getlist", None)
        values = getlist(name) if getlist else data.get(name, [])
        return [values] if isinstance(values, str) else list(values)


class TagsField(forms.Field):
    widget = TagsWidget

    def to_python(self, value: list[str] | str | None) -> list[str]:
        items = [value] if isinstance(value, str) else list(value or [])
        return [tag for item in items for tag in str(item).split(",")]

    def validate(self, value: list[str]) -> None:
        pass  # normalize_tags in clean() is the rule

    def clean(self, value: Any) -> list[str]:
        try:
            return normalize_tags(self.to_python(value))
        except RunError as exc:
            raise forms.ValidationError(exc.message) from None


class TestRunForm(RunOptionsForm):
    """One test run of a task: validated here, triggered by `runs.triggering.trigger`."""

    __test__ = False  # not a pytest class, despite the name

    payload = forms.CharField(required=False, strip=False, widget=forms.Textarea)
    metadata = forms.CharField(required=False, strip=False, widget=forms.Textarea)
    version = forms.ChoiceField(required=False)
    machine = forms.ChoiceField(
        required=False, choices=[("", "Task default"), *((m, m) for m in MACHINES)]
    )
    tags = TagsField(required=False)
    max_attempts = forms.CharField(required=False)
    max_duration = forms.CharField(required=False)
    delay = forms.CharField(required=False)

    def __init__(
        self,
        *args,
        environment: Environment,
        task: TaskDefinition,
        queues: list[tuple[str, str]],
        versions: list[tuple[str, str]],
        **kwargs,
    ) -> None:
        """`queues` and `versions` are (value, label) choices besides "" (the default:
        the task's own queue, the current deployment)."""
        super().__init__(*args, **kwargs)
        queue_choices = [("", f"Default ({task.queue})"), *queues]
        loaded = self.initial.get("queue")
        if loaded and loaded not in {value for value, _ in queue_choices}:
            queue_choices.append((loaded, loaded))
        self.fields["queue"].choices = queue_choices
        self.fields["version"].choices = [
            ("", f"Current ({task.deployment.version})"),
            *versions,
        ]
        self.fields["machine"].choices = [
            ("", f"Default ({task.machine})"),
            *((m, m) for m in MACHINES),
        ]
        self._set_placeholders(environment, task)
        for field in self.fields.values():
            # The inputs sit in several panels; the attribute ties them to one <form>.
            field.widget.attrs["form"] = FORM_ID

    def _set_placeholders(self, environment: Environment, task: TaskDefinition) -> None:
        """Say what an empty option means for this task and environment."""
        retry = task.retry if isinstance(task.retry, dict) else {}
        placeholders = {
            "max_attempts": f"{retry.get('maxAttempts') or 3} (task default)",
            "max_duration": f"{task.max_duration}s (task default)"
            if task.max_duration
            else "No limit",
            "delay": "Now",
            "ttl": ttl_placeholder(environment),
            "priority": "0",
            "concurrency_key": "None",
            "idempotency_key": "None",
            "idempotency_key_ttl": "30d (default)",
        }
        for name, text in placeholders.items():
            attrs = self.fields[name].widget.attrs
            attrs.update(placeholder=text, autocomplete="off", spellcheck="false")
        self.fields["max_attempts"].widget.attrs["inputmode"] = "numeric"

    def tag_values(self) -> list[str]:
        """The tags to draw as chips: as submitted (even if invalid) or as loaded."""
        value = self["tags"].value() or []
        return [t.strip() for t in TagsField().to_python(value) if t.strip()]

    # --- per-field rules ---------------------------------------------------------

    def clean_payload(self) -> Any:
        value = parse_json(self.cleaned_data["payload"])
        _service_check(check_payload_size, packets.encode_value(value)[0])
        return value

    def clean_metadata(self) -> dict:
        value = parse_json(self.cleaned_data["metadata"])
        if not isinstance(value, dict):
            raise forms.ValidationError("Metadata must be a JSON object")
        _service_check(check_metadata_size, value)
        return value

    def clean_max_attempts(self) -> int | None:
        text = self.cleaned_data["max_attempts"].strip()
        if not text:
            return None
        try:
            value = int(text)
        except ValueError:
            value = text  # check_max_attempts rejects it with the API's message
        _service_check(check_max_attempts, value)
        return value

    def clean_max_duration(self) -> int | None:
        text = self.cleaned_data["max_duration"].strip()
        if not text:
            return None
        low, high = MAX_DURATION_RANGE
        message = (
            f"Max duration must be between {low} and {high} seconds (e.g. 300 or 5m)"
        )
        try:
            seconds = duration_seconds(text)
        except InvalidDuration:
            raise forms.ValidationError(message) from None
        if not low <= seconds <= high or seconds != int(seconds):
            raise forms.ValidationError(message)
        return int(seconds)

    def clean_delay(self) -> str:
        text = self.cleaned_data["delay"].strip()
        try:
            parse_delay_strict(text)
        except InvalidDuration as exc:
            raise forms.ValidationError(str(exc)) from None
        return text

    # --- outputs -------------------------------------------------------------------

    def trigger_options(self) -> TriggerOptions:
        data = self.cleaned_data
        return TriggerOptions(
            queue=data["queue"],
            concurrency_key=data["concurrency_key"] or None,
            delay=data["delay"] or None,
            ttl=data["ttl"],
            idempotency_key=data["idempotency_key"] or None,
            idempotency_key_ttl=data["idempotency_key_ttl"] or None,
            machine=data["machine"],
            max_attempts=data["max_attempts"],
            max_duration=data["max_duration"],
            metadata=data["metadata"],
            tags=data["tags"],
            test=True,
            priority=data["priority"],
            lock_to_version=data["version"],
        )

    def add_service_error(self, error: RunError) -> None:
        """Show an error the trigger service raised next to the field it concerns."""
        self.add_error(_SERVICE_FIELDS.get(error.field or ""), error.message)

    def template_values(self) -> dict:
        """What a template stores: the editors' text and the options as typed."""
        options = {
            name: self.data.get(name, "").strip()
            for name in OPTION_FIELDS
            if name != "tags"
        }
        options["tags"] = self.cleaned_data["tags"]
        return {
            "payload": self.data.get("payload", ""),
            "metadata": self.data.get("metadata", ""),
            "options": options,
        }


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _number(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def initial_from_template(template: TestTemplate) -> dict:
    options = template.options if isinstance(template.options, dict) else {}
    return {
        "payload": template.payload,
        "metadata": template.metadata,
        **{name: options[name] for name in OPTION_FIELDS if name in options},
    }


def editors_from_run(run: Run) -> dict:
    """A run's payload and trigger-time metadata, pretty-printed for the editors."""
    payload = packets.decode_packet(run.payload, run.payload_type)
    return {
        "payload": _pretty(payload if payload is not None else {}),
        "metadata": _pretty(run.seed_metadata or {}),
        "tags": [],
    }


def initial_from_run(run: Run) -> dict:
    """A previous run's payload, metadata and options, ready to run again. Its idempotency
    key is left out: reusing it would return that same run instead of a new one."""
    delay = ""
    if run.delay_until:
        delay = format_duration(
            max(1, round((run.delay_until - run.created_at).total_seconds()))
        )
    return {
        **editors_from_run(run),
        "version": run.lock_to_version,
        "queue": run.queue,
        "machine": run.machine,
        "tags": list(run.tags or []),
        "max_attempts": str(run.max_attempts),
        "max_duration": str(run.max_duration) if run.max_duration else "",
        "delay": delay,
        "ttl": run.ttl or "",
        "priority": _number(run.priority_ms / 1000) if run.priority_ms else "",
        "concurrency_key": run.concurrency_key or "",
    }


BLANK = {"payload": "{}", "metadata": "{}", "tags": []}


def size_limits() -> dict[str, int]:
    return {
        "payload": settings.RUNWATCH_PAYLOAD_MAX_BYTES,
        "metadata": settings.RUNWATCH_METADATA_MAX_BYTES,
    }
