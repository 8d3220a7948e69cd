"""RunFilter: the one FilterSet behind the dashboard's runs list, the API's
`filter[...]` parameters, bulk actions and the websocket subscriptions.

Query-string names are the dashboard's; the API maps `filter[taskIdentifier]` etc.
onto them (see API_PARAMS).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters.widgets import QueryArrayWidget

from runs.durations import InvalidDuration, parse_duration_seconds
from runs.models import BulkActionItem, Run, RunTag
from runs.statuses import parse_status_names
from runs.triggering import MACHINES

DEFAULT_PERIOD = "7d"
PERIODS = ["5m", "30m", "1h", "6h", "12h", "1d", "3d", "7d", "14d", "30d"]

# API `filter[...]` name → RunFilter field name.
API_PARAMS = {
    "status": "status",
    "taskIdentifier": "task",
    "version": "version",
    "tag": "tag",
    "bulkAction": "bulk_action",
    "schedule": "schedule",
    "isTest": "is_test",
    "createdAt[from]": "from",
    "createdAt[to]": "to",
    "createdAt[period]": "period",
    "from": "from",
    "to": "to",
    "period": "period",
    "batch": "batch",
    "queue": "queue",
    "machine": "machine",
}


class ListField(forms.Field):
    """A list of non-empty strings from repeated (`?a=1&a=2`) or comma-separated (`?a=1,2`) values."""

    widget = QueryArrayWidget

    def to_python(self, value) -> list[str]:
        if not value:
            return []
        if isinstance(value, str):
            value = [value]
        items: list[str] = []
        for v in value:
            items.extend(part.strip() for part in str(v).split(",") if part.strip())
        return items


class ListFilter(django_filters.Filter):
    field_class = ListField

    def filter(self, qs, value):
        if not value:
            return qs
        return super().filter(qs, value)


def parse_timestamp(value: str) -> datetime:
    """Unix milliseconds or an ISO-8601 date/time."""
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    parsed = parse_datetime(text)
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise forms.ValidationError(
                f"Invalid date: {value!r} (use unix milliseconds or ISO-8601)"
            ) from None
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


class TimestampField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value)
        return parse_timestamp(value) if value else None


class TimestampFilter(django_filters.Filter):
    field_class = TimestampField


class RunFilter(django_filters.FilterSet):
    status = ListFilter(method="filter_status", label="Status")
    task = ListFilter(field_name="task_identifier", lookup_expr="in", label="Task")
    tag = ListFilter(method="filter_tag", label="Tags")
    version = ListFilter(field_name="version", lookup_expr="in", label="Version")
    queue = ListFilter(field_name="queue", lookup_expr="in", label="Queue")
    machine = ListFilter(method="filter_machine", label="Machine")
    batch = django_filters.CharFilter(field_name="batch__friendly_id", label="Batch ID")
    bulk_action = django_filters.CharFilter(
        method="filter_bulk_action", label="Bulk action"
    )
    schedule = django_filters.CharFilter(method="filter_schedule", label="Schedule")
    search = django_filters.CharFilter(
        method="filter_search", label="Run ID or idempotency key"
    )
    root_only = django_filters.BooleanFilter(
        method="filter_root_only", label="Root runs only"
    )
    is_test = django_filters.BooleanFilter(field_name="is_test", label="Test runs")
    period = django_filters.CharFilter(
        method="filter_noop", label="Created in the last"
    )
    from_ = TimestampFilter(method="filter_noop", label="Created from")
    to = TimestampFilter(method="filter_noop", label="Created to")

    class Meta:
        model = Run
        fields: list[str] = []

    def __init__(self, data=None, *args, **kwargs):
        # `from` is a Python keyword; the query string uses it as is.
        if data is not None and "from" in data:
            data = data.copy()
            data.setdefault("from_", data.get("from"))
        super().__init__(data, *args, **kwargs)

    # --- validation --------------------------------------------------------
    def clean_statuses(self, names: list[str]) -> set[str]:
        statuses, unknown = parse_status_names(names)
        if unknown:
            raise forms.ValidationError(f"Invalid status values: {', '.join(unknown)}")
        return statuses

    @property
    def qs(self) -> QuerySet[Run]:
        qs = super().qs
        if self.is_bound and self.is_valid():
            qs = self._filter_created(qs, self.form.cleaned_data)
        return qs

    def is_valid(self) -> bool:
        valid = super().is_valid()
        if not valid:
            return False
        data = self.form.cleaned_data
        try:
            if data.get("status"):
                self.clean_statuses(data["status"])
            if data.get("period") and data["period"] != "all":
                parse_duration_seconds(data["period"])
            bad = [m for m in data.get("machine") or [] if m not in MACHINES]
            if bad:
                raise forms.ValidationError(f"Invalid machine values: {', '.join(bad)}")
        except (forms.ValidationError, InvalidDuration) as exc:
            message = (
                exc.messages[0] if isinstance(exc, forms.ValidationError) else str(exc)
            )
            field = (
                "period"
                if isinstance(exc, InvalidDuration)
                else ("status" if "status" in message else "machine")
            )
            self.form.add_error(field, message)
            return False
        return True

    # --- filters -----------------------------------------------------------
    def filter_status(self, qs, name, value):
        return qs.filter(status__in=self.clean_statuses(value)) if value else qs

    def filter_tag(self, qs, name, value):
        if not value:
            return qs
        return qs.filter(
            Exists(RunTag.objects.filter(run_id=OuterRef("pk"), tag__in=value))
        )

    def filter_machine(self, qs, name, value):
        return qs.filter(machine__in=value) if value else qs

    def filter_bulk_action(self, qs, name, value):
        if not value:
            return qs
        return qs.filter(
            Exists(
                BulkActionItem.objects.filter(
                    bulk_action__friendly_id=value, run_id=OuterRef("pk")
                )
            )
            | Q(
                pk__in=BulkActionItem.objects.filter(
                    bulk_action__friendly_id=value, new_run__isnull=False
                ).values("new_run_id")
            )
        )

    def filter_schedule(self, qs, name, value):
        # Runwatch has no schedules yet, so no run comes from one.
        return qs.none() if value else qs

    def filter_search(self, qs, name, value):
        value = (value or "").strip()
        if not value:
            return qs
        if value.startswith("run_"):
            return qs.filter(friendly_id=value)
        return qs.filter(Q(idempotency_key_user=value) | Q(idempotency_key=value))

    def filter_root_only(self, qs, name, value):
        return qs.filter(depth=0) if value else qs

    def filter_noop(self, qs, name, value):
        return qs  # applied together in _filter_created

    def created_bounds(
        self, data: dict | None = None
    ) -> tuple[datetime | None, datetime | None]:
        """The created-at window: from/to if given, else the period (default 7 days)."""
        data = data if data is not None else self.form.cleaned_data
        start, end = data.get("from_"), data.get("to")
        period = data.get("period") or ""
        if start is None and end is None and period != "all":
            start = timezone.now() - timedelta(
                seconds=parse_duration_seconds(period or DEFAULT_PERIOD)
            )
        return start, end

    def _filter_created(self, qs, data):
        start, end = self.created_bounds(data)
        if start is not None:
            qs = qs.filter(created_at__gte=start)
        if end is not None:
            qs = qs.filter(created_at__lte=end)
        return qs

    def error_messages(self) -> list[str]:
        return [
            f"{field}: {msg}" if field != "__all__" else msg
            for field, msgs in self.form.errors.items()
            for msg in msgs
        ]


def api_params_to_filter_data(query) -> dict[str, str | list[str]]:
    """Translate the API's `filter[...]` query parameters into RunFilter data."""
    data: dict[str, str | list[str]] = {}
    for key in query:
        if not key.startswith("filter[") or not key.endswith("]"):
            continue
        parts = re.findall(r"\[([^\]]*)\]", key[len("filter") :])
        name = parts[0] + "".join(f"[{p}]" for p in parts[1:])
        target = API_PARAMS.get(name)
        if target is None:
            continue
        target = "from_" if target == "from" else target
        values = query.getlist(key) if hasattr(query, "getlist") else [query[key]]
        data[target] = ",".join(values)
    return data
