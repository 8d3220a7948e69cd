"""What a bulk action acts on, frozen at submit: a filter (RunFilter data whose time
window becomes absolute), a hand selection of runs, or the runs an earlier bulk
action acted on; and the filter in words, for the confirmation and the audit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone

from runs.errors import InvalidInput
from runs.filters import RunFilter, status_label
from runs.models import (
    BulkAction,
    BulkActionItem,
    BulkActionOutcome,
    Environment,
    Run,
)
from runs.querysets import RunQuerySet

MAX_RUN_IDS = 500  # per hand selection (Trigger.dev: 500 over the API, 250 by hand)
# RunFilter fields that make the time window, frozen into absolute from/to.
WINDOW_FIELDS = frozenset({"period", "from_", "to"})


@dataclass(frozen=True)
class BulkTarget:
    """The runs a bulk action acts on, as stored in BulkAction.params:
    `{"filter": {...}}` (RunFilter data with an absolute time window),
    `{"runIds": [...]}` (a hand selection of run ids) or `{"bulkAction": "bulk_…"}`
    (the runs an earlier bulk action canceled or replayed: "replay these runs again")."""

    environment: Environment
    params: dict

    @property
    def is_selection(self) -> bool:
        return "runIds" in self.params

    def queryset(self) -> RunQuerySet:
        runs = Run.objects.filter(environment=self.environment)
        if self.is_selection:
            return runs.filter(friendly_id__in=self.params["runIds"])
        if "bulkAction" in self.params:
            acted_on = BulkActionItem.objects.filter(
                bulk_action__environment=self.environment,
                bulk_action__friendly_id=self.params["bulkAction"],
            ).exclude(outcome=BulkActionOutcome.SKIPPED)
            return runs.filter(pk__in=acted_on.values("run_id"))
        return RunFilter(self.params["filter"], queryset=runs).qs

    def describe(self) -> str:
        if self.is_selection:
            count = len(self.params["runIds"])
            return f"{count} selected run{'' if count == 1 else 's'}"
        if "bulkAction" in self.params:
            return (
                f"The runs bulk action {self.params['bulkAction']} canceled or replayed"
            )
        return describe_filter(self.params["filter"])


def target_from_filter(
    environment: Environment, data, *, now: datetime | None = None
) -> BulkTarget:
    """Validate RunFilter data (the runs list's query string) and freeze it: the time
    window becomes absolute and ends no later than now."""
    now = now or timezone.now()
    run_filter = RunFilter(data, queryset=Run.objects.none())
    if not run_filter.is_valid():
        raise InvalidInput("; ".join(run_filter.error_messages()), field="filter")
    cleaned = run_filter.form.cleaned_data
    start, end = run_filter.created_bounds()
    end = min(end, now) if end else now
    if start is not None and start > end:
        raise InvalidInput("The filter's time range is empty", field="filter")
    frozen: dict[str, str | list[str]] = {}
    for name in RunFilter.base_filters:
        value = cleaned.get(name)
        if name in WINDOW_FIELDS or value is None or value in ("", []):
            continue
        if isinstance(value, bool):
            frozen[name] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            frozen[name] = sorted(set(value))
        else:
            frozen[name] = str(value).strip()
    if start is not None:
        frozen["from"] = _iso(start)
    frozen["to"] = _iso(end)
    return BulkTarget(environment, {"filter": frozen})


def target_from_run_ids(environment: Environment, run_ids: list) -> BulkTarget:
    """A hand selection of runs of `environment`; every id must exist there."""
    if not isinstance(run_ids, list) or not all(isinstance(r, str) for r in run_ids):
        raise InvalidInput("runIds must be a list of run ids", field="runIds")
    ids = list(dict.fromkeys(r.strip() for r in run_ids if r.strip()))
    if not ids:
        raise InvalidInput("Select at least one run", field="runIds")
    if len(ids) > MAX_RUN_IDS:
        raise InvalidInput(
            f"A selection can hold at most {MAX_RUN_IDS} runs ({len(ids)} given); "
            "to act on more, use a filter",
            field="runIds",
        )
    found = set(
        Run.objects.filter(environment=environment, friendly_id__in=ids).values_list(
            "friendly_id", flat=True
        )
    )
    missing = [r for r in ids if r not in found]
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise InvalidInput(
            f"{len(missing)} of the selected runs were not found in this environment: {shown}",
            field="runIds",
        )
    return BulkTarget(environment, {"runIds": ids})


def target_from_bulk_action(bulk: BulkAction) -> BulkTarget:
    """The runs `bulk` canceled or replayed (not the ones it skipped), to act on again."""
    return BulkTarget(bulk.environment, {"bulkAction": bulk.friendly_id})


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


# --- the filter in words ---------------------------------------------------------------


def describe_filter(data: dict) -> str:
    """A frozen filter in words, e.g. "Status is Failed · Task is send-email ·
    Created 2026-11-25 09:00:00 → 2026-11-25 12:45:10 UTC"."""
    parts: list[str] = []
    if data.get("status"):
        parts.append("Status is " + " or ".join(map(status_label, data["status"])))
    for name, label in (
        ("task", "Task"),
        ("version", "Version"),
        ("queue", "Queue"),
        ("machine", "Machine"),
    ):
        if data.get(name):
            parts.append(f"{label} is {' or '.join(data[name])}")
    if data.get("tag"):
        parts.append("Tagged " + " or ".join(data["tag"]))
    for name, label in (
        ("batch", "In batch"),
        ("bulk_action", "Touched by bulk action"),
        ("schedule", "From schedule"),
        ("search", "Run ID or idempotency key is"),
    ):
        if data.get(name):
            parts.append(f"{label} {data[name]}")
    described = {"status", "task", "version", "queue", "machine", "tag", "batch"}
    described |= {"bulk_action", "schedule", "search", "root_only", "is_test"}
    for name, value in data.items():
        if (
            name in described
            or name in ("from", "to")
            or name not in RunFilter.base_filters
        ):
            continue
        label = RunFilter.base_filters[name].label or name
        shown = " or ".join(value) if isinstance(value, list) else value
        parts.append(f"{label} is {shown}")
    if data.get("root_only") == "true":
        parts.append("Root runs only")
    if data.get("is_test") in ("true", "false"):
        parts.append("Test runs only" if data["is_test"] == "true" else "No test runs")
    parts.append(_window_words(data.get("from"), data.get("to")))
    return " · ".join(parts)


def _window_words(start: str | None, end: str | None) -> str:
    def fmt(value: str) -> str:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")

    if start and end:
        return f"Created {fmt(start)} → {fmt(end)} UTC"
    if end:
        return f"Created up to {fmt(end)} UTC"
    return "Any creation time"
