"""RunFilter: the one FilterSet behind the dashboard's runs list, the API's
`filter[...]` parameters, bulk actions and the websocket subscriptions.

Query-string names are the dashboard's; the API maps `filter[taskIdentifier]` etc.
onto them (see API_PARAMS). Every field validates its own input, so bad input is a
form error (a message in the page, a 400 in the API), never an exception.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters.widgets import QueryArrayWidget

from runs.durations import InvalidDuration, parse_duration_seconds
from runs.models import Batch, BatchStatus, BulkActionItem, Environment, Run, RunTag
from runs.pagination import ANNOTATED_KEYS
from runs.querysets import pk_in
from runs.statuses import GROUPS, RunStatus, parse_status_names
from runs.triggering import MACHINES

DEFAULT_PERIOD = "7d"
TAG_PROBE_LIMIT = 5000
# Filters that leave out runs of the window (is_test also when false).
RUN_SIDE_FILTERS = (
    "status",
    "task",
    "version",
    "queue",
    "machine",
    "batch",
    "parent",
    "bulk_action",
    "schedule",
    "search",
    "root_only",
)
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
    max_items = 100

    def to_python(self, value: Any) -> list[str]:
        if not value:
            return []
        if isinstance(value, str):
            value = [value]
        items: list[str] = []
        for v in value:
            items.extend(part.strip() for part in str(v).split(",") if part.strip())
        if len(items) > self.max_items:
            raise forms.ValidationError(f"At most {self.max_items} values")
        if any("\x00" in item for item in items):
            raise forms.ValidationError("Null characters are not allowed.")
        return list(dict.fromkeys(items))


class StatusListField(ListField):
    """Status names, legacy names and groups (queued, running, waiting, finished, failed)."""

    def to_python(self, value: Any) -> list[str]:
        names = super().to_python(value)
        _, unknown = parse_status_names(names)
        if unknown:
            raise forms.ValidationError(f"Invalid status values: {', '.join(unknown)}")
        return names


class MachineListField(ListField):
    def to_python(self, value: Any) -> list[str]:
        machines = super().to_python(value)
        bad = [m for m in machines if m not in MACHINES]
        if bad:
            raise forms.ValidationError(
                f"Invalid machine values: {', '.join(bad)} (one of {', '.join(MACHINES)})"
            )
        return machines


class StrictBooleanField(forms.NullBooleanField):
    """true / false (also 1 / 0, any case), or nothing for "not filtered". Anything
    else is an error: a NullBooleanField would read it as "not filtered" silently."""

    widget = forms.TextInput  # the raw value: NullBooleanSelect maps others to None
    TRUE = ("true", "1")
    FALSE = ("false", "0")

    def to_python(self, value: Any) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        if text:
            raise forms.ValidationError(
                f"Must be true or false, got {str(value)[:40]!r}"
            )
        return None

    def validate(self, value: bool | None) -> None:
        pass


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class PeriodField(forms.CharField):
    """A duration such as 30m or 7d, or "all" for no time window."""

    def to_python(self, value: Any) -> str:
        text = (super().to_python(value) or "").strip()
        if text and text != "all":
            try:
                parse_duration_seconds(text)
            except InvalidDuration as exc:
                raise forms.ValidationError(str(exc)) from None
        return text


def parse_timestamp(value: str) -> datetime:
    """Unix milliseconds or an ISO-8601 date/time (UTC unless it says otherwise)."""
    text = str(value).strip()
    try:
        if text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        parsed = parse_datetime(text) or datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        raise forms.ValidationError(
            f"Invalid date: {value!r} (use unix milliseconds or ISO-8601)"
        ) from None
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


class TimestampField(forms.CharField):
    def to_python(self, value: Any) -> datetime | None:
        value = super().to_python(value)
        return parse_timestamp(value) if value else None


class ListFilter(django_filters.Filter):
    field_class = ListField

    def filter(self, qs: QuerySet, value: list[str]) -> QuerySet:
        if not value:
            return qs
        return super().filter(qs, value)


class StatusFilter(ListFilter):
    field_class = StatusListField


class MachineFilter(ListFilter):
    field_class = MachineListField


class TimestampFilter(django_filters.Filter):
    field_class = TimestampField


class PeriodFilter(django_filters.Filter):
    field_class = PeriodField


class RunFilter(django_filters.FilterSet):
    status = StatusFilter(method="filter_status", label="Status")
    task = ListFilter(field_name="task_identifier", lookup_expr="in", label="Task")
    tag = ListFilter(method="filter_tag", label="Tag")
    version = ListFilter(field_name="version", lookup_expr="in", label="Version")
    queue = ListFilter(field_name="queue", lookup_expr="in", label="Queue")
    machine = MachineFilter(field_name="machine", lookup_expr="in", label="Machine")
    batch = django_filters.CharFilter(method="filter_batch", label="Batch")
    parent = django_filters.CharFilter(method="filter_parent", label="Parent run")
    bulk_action = django_filters.CharFilter(
        method="filter_bulk_action", label="Bulk action"
    )
    schedule = django_filters.CharFilter(method="filter_schedule", label="Schedule")
    search = django_filters.CharFilter(
        method="filter_search", label="Run ID or idempotency key"
    )
    root_only = StrictBooleanFilter(method="filter_root_only", label="Root runs only")
    is_test = StrictBooleanFilter(field_name="is_test", label="Test runs")
    period = PeriodFilter(method="filter_noop", label="Created in the last")
    from_ = TimestampFilter(method="filter_noop", label="Created from")
    to = TimestampFilter(method="filter_noop", label="Created to")

    class Meta:
        model = Run
        fields: list[str] = []

    def __init__(
        self,
        data: Any = None,
        *args: Any,
        environment: Environment | None = None,
        **kwargs: Any,
    ) -> None:
        """`environment` (the one `queryset` is scoped to) lets the tag filter start
        from the RunTag index; pass it whenever the queryset is one environment's."""
        self.environment = environment
        # `from` is a Python keyword; the query string uses it as is.
        if data is not None and "from" in data and "from_" not in data:
            data = data.copy()
            data["from_"] = data.get("from")
        super().__init__(data, *args, **kwargs)

    def is_valid(self) -> bool:
        if not super().is_valid():
            return False
        start, end = (
            self.form.cleaned_data.get("from_"),
            self.form.cleaned_data.get("to"),
        )
        if start and end and start > end:
            self.form.add_error("to", "The end of the period is before its start")
            return False
        return True

    @property
    def qs(self) -> QuerySet[Run]:
        qs = super().qs
        if self.is_bound and self.is_valid():
            qs = self._filter_created(qs, self.form.cleaned_data)
        return qs

    # --- filters -----------------------------------------------------------
    def filter_status(self, qs: QuerySet, name: str, value: list[str]) -> QuerySet:
        return qs.filter(status__in=status_set(value)) if value else qs

    def filter_tag(self, qs: QuerySet, name: str, value: list[str]) -> QuerySet:
        """Any of the tags. With `environment` given, driven from RunTag's
        (environment, tag, -created_at, -run) index, which lists a tag's runs in
        page order.

        One tag: the page is read in that order (the join's columns are the page
        keys, runs.pagination), a page's worth of index entries for a tag of any
        frequency. Other filters on the runs (status, task…) then skip tagged runs
        that fail them, which is slow only when the tag is common and they are
        selective: there, walking the runs in page order and checking each
        against (run, tag) finds a page sooner. A bounded count of the tag's rows
        in the window tells the two apart (only when there are such filters).
        Several tags: a union of index ranges has no page order, so a bounded probe
        of their run ids picks the page from those ids when there are few,
        else the per-run check. TAG_PROBE_LIMIT ≈ √(page size × runs in the
        window) balances the worst cases of both sides."""
        if not value:
            return qs
        if self.environment is None:
            return qs.filter(has_any_tag(value))
        window = self.created_bounds()
        tag_rows = self._tag_rows(value, *window)
        if len(value) == 1:
            if (
                not self._narrows_runs()
                or tag_rows[:TAG_PROBE_LIMIT].count() < TAG_PROBE_LIMIT
            ):
                return self._in_tag_order(qs, value[0], *window)
            return qs.filter(has_any_tag(value))
        # Count tag rows, not runs: a run with two of the tags is two rows, and a
        # full probe means there may be more rows than it read.
        rows = list(tag_rows.values_list("run_id", flat=True)[:TAG_PROBE_LIMIT])
        if len(rows) < TAG_PROBE_LIMIT:
            return qs.filter(pk_in(sorted(set(rows))))
        return qs.filter(has_any_tag(value))

    def _tag_rows(
        self, tags: list[str], start: datetime | None, end: datetime | None
    ) -> QuerySet[RunTag]:
        """The RunTag rows of these tags in the created-at window."""
        rows = RunTag.objects.filter(environment=self.environment, tag__in=tags)
        if start is not None:
            rows = rows.filter(created_at__gte=start)
        if end is not None:
            rows = rows.filter(created_at__lte=end)
        return rows

    def _in_tag_order(
        self, qs: QuerySet, tag: str, start: datetime | None, end: datetime | None
    ) -> QuerySet:
        """Runs joined to their row of `tag` (one each: RunTag is unique on run and
        tag), paged by that row's copy of (created_at, id)."""
        join = {"tag_rows__environment": self.environment, "tag_rows__tag": tag}
        if start is not None:
            join["tag_rows__created_at__gte"] = start
        if end is not None:
            join["tag_rows__created_at__lte"] = end
        # One filter() call, so one join; the annotations reuse it.
        created_key, id_key = ANNOTATED_KEYS
        return qs.filter(**join).annotate(
            **{
                created_key: F("tag_rows__created_at"),
                id_key: F("tag_rows__run_id"),
            }
        )

    def _narrows_runs(self) -> bool:
        """Whether a filter besides the tags and the window leaves out runs."""
        data = self.form.cleaned_data
        return data.get("is_test") is not None or any(
            data.get(name) for name in RUN_SIDE_FILTERS
        )

    def filter_batch(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        # `batch_id = (subquery)`, not a join: PostgreSQL then walks run_batch_created
        # instead of every run in the window looking for the batch's.
        if not value.strip():
            return qs
        batch = Batch.objects.filter(friendly_id=value.strip()).values("id")[:1]
        return qs.filter(batch_id=Subquery(batch))

    def filter_parent(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(parent__friendly_id=value.strip()) if value.strip() else qs

    def filter_bulk_action(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return qs
        # The runs it touched and the runs its replays created, as one id set: a
        # semi-join PostgreSQL can start from the bulk action's items.
        items = BulkActionItem.objects.filter(bulk_action__friendly_id=value)
        touched = items.values("run_id").union(
            items.filter(new_run__isnull=False).values("new_run_id"), all=True
        )
        return qs.filter(pk__in=touched)

    def filter_schedule(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        # Runwatch has no schedules yet, so no run comes from one.
        return qs.none() if value else qs

    def filter_search(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        value = (value or "").strip()
        if not value:
            return qs
        if value.startswith("run_"):
            return qs.filter(friendly_id=value)
        return qs.filter(Q(idempotency_key_user=value) | Q(idempotency_key=value))

    def filter_root_only(self, qs: QuerySet, name: str, value: bool | None) -> QuerySet:
        return qs.filter(depth=0) if value else qs

    def filter_noop(self, qs: QuerySet, name: str, value: Any) -> QuerySet:
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

    def _filter_created(self, qs: QuerySet, data: dict) -> QuerySet:
        start, end = self.created_bounds(data)
        if start is not None:
            qs = qs.filter(created_at__gte=start)
        if end is not None:
            qs = qs.filter(created_at__lte=end)
        return qs

    # --- presentation and live matching -------------------------------------
    def error_messages(self) -> list[str]:
        """Form errors as sentences that name the filter, for the page and the API."""
        messages = []
        for field, errors in self.form.errors.items():
            label = self.filters[field].label if field in self.filters else ""
            messages.extend(f"{label}: {e}" if label else e for e in errors)
        return messages

    def describe(self) -> list[tuple[str, str, str]]:
        """The active filters as (field, label, value in words); empty when invalid."""
        if not (self.is_bound and self.is_valid()):
            return []
        data = self.form.cleaned_data
        parts: list[tuple[str, str, str]] = []
        if data.get("status"):
            order = [*GROUPS, *RunStatus.values]
            names = sorted(
                data["status"],
                key=lambda n: order.index(n) if n in order else len(order),
            )
            words = ", ".join(status_label(name) for name in names)
            parts.append(("status", self.filters["status"].label, words))
        for name in ("task", "tag", "version", "queue", "machine"):
            if data.get(name):
                parts.append((name, self.filters[name].label, ", ".join(data[name])))
        for name in ("batch", "parent", "bulk_action", "schedule", "search"):
            if data.get(name):
                parts.append((name, self.filters[name].label, data[name]))
        if data.get("root_only"):
            parts.append(("root_only", "Root runs only", "yes"))
        if data.get("is_test") is not None:
            parts.append(
                ("is_test", "Test runs", "only" if data["is_test"] else "hidden")
            )
        parts.append(("period", "Created", self._describe_period(data)))
        return parts

    def _describe_period(self, data: dict) -> str:
        start, end = data.get("from_"), data.get("to")
        if start or end:
            fmt = "%Y-%m-%d %H:%M UTC"
            if start and end:
                return f"{start:{fmt}} – {end:{fmt}}"
            return f"after {start:{fmt}}" if start else f"before {end:{fmt}}"
        period = data.get("period") or DEFAULT_PERIOD
        if period == "all":
            return "any time"
        return f"in the last {duration_in_words(parse_duration_seconds(period))}"

    def matches(self, run: Run) -> bool:
        """Whether `run` (from `with_row_columns()`) is in `.qs`, decided in Python, so
        the live feed can test each changed run against each connection's filters.
        Filters the row does not carry (parent, bulk action, a hashed idempotency key)
        are checked with one query."""
        if not (self.is_bound and self.is_valid()):
            return False
        data = self.form.cleaned_data
        start, end = self.created_bounds(data)
        search = (data.get("search") or "").strip()
        checks = [
            not data.get("status") or run.status in status_set(data["status"]),
            not data.get("task") or run.task_identifier in data["task"],
            not data.get("tag") or bool(set(run.tags) & set(data["tag"])),
            not data.get("version") or run.version in data["version"],
            not data.get("queue") or run.queue in data["queue"],
            not data.get("machine") or run.machine in data["machine"],
            not data.get("batch")
            or (run.batch_id is not None and run.batch.friendly_id == data["batch"]),
            not data.get("root_only") or run.depth == 0,
            data.get("is_test") is None or run.is_test == data["is_test"],
            not data.get("schedule"),
            start is None or run.created_at >= start,
            end is None or run.created_at <= end,
            not search.startswith("run_") or run.friendly_id == search,
        ]
        if not all(checks):
            return False
        needs_query = data.get("parent") or data.get("bulk_action")
        if search and not search.startswith("run_"):
            needs_query = needs_query or run.idempotency_key_user != search
        if needs_query:
            return self.qs.filter(pk=run.pk).exists()
        return True


_WORD_UNITS = (("day", 86_400), ("hour", 3_600), ("minute", 60))


def duration_in_words(seconds: int) -> str:
    """604800 → "7 days", 3600 → "hour", 5400 → "90 minutes" (for "in the last …")."""
    for unit, size in _WORD_UNITS:
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count:,} {unit}s"
    return f"{seconds:,} seconds"


def status_label(name: str) -> str:
    """How the dashboard names a status filter value: "Timed out", "Any failed"."""
    if name in RunStatus.values:
        return RunStatus(name).label
    if name in GROUPS:
        return f"Any {name}"
    if name.upper() in RunStatus.values:
        return RunStatus(name.upper()).label
    return name


def has_any_tag(tags: list[str]) -> Exists:
    """A per-run check against RunTag's (run, tag) index."""
    return Exists(RunTag.objects.filter(run_id=OuterRef("pk"), tag__in=tags))


def status_set(names: list[str]) -> set[str]:
    """Status and group names → the statuses they cover."""
    return parse_status_names(names)[0]


# Status filter choices for the dashboard: groups first, then every status.
STATUS_GROUP_CHOICES = [(name, name.capitalize()) for name in GROUPS]
STATUS_CHOICES = list(RunStatus.choices)


def api_params_to_filter_data(query: Any) -> dict[str, str | list[str]]:
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


class BatchStatusListField(ListField):
    def to_python(self, value: Any) -> list[str]:
        names = super().to_python(value)
        bad = [n for n in names if n not in BatchStatus.values]
        if bad:
            raise forms.ValidationError(
                f"Invalid status values: {', '.join(bad)} (one of {', '.join(BatchStatus.values)})"
            )
        return names


class BatchStatusFilter(ListFilter):
    field_class = BatchStatusListField


class BatchFilter(django_filters.FilterSet):
    """The batches list: status (multi), batch id, created period."""

    status = BatchStatusFilter(field_name="status", lookup_expr="in", label="Status")
    search = django_filters.CharFilter(method="filter_search", label="Batch ID")
    period = PeriodFilter(method="filter_period", label="Created in the last")

    class Meta:
        model = Batch
        fields: list[str] = []

    def filter_search(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(friendly_id=value.strip()) if value.strip() else qs

    def filter_period(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        if not value or value == "all":
            return qs
        since = timezone.now() - timedelta(seconds=parse_duration_seconds(value))
        return qs.filter(created_at__gte=since)

    def error_messages(self) -> list[str]:
        return RunFilter.error_messages(self)
