"""The runs table: RunFilter + keyset page + the filter bar's state, shared by the runs
list and the pages that embed a filtered runs table (batch page)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import QueryDict
from django.utils.safestring import SafeString

from dashboard.rows import render_run_rows
from runs.filters import DEFAULT_PERIOD, PERIODS, STATUS_GROUP_CHOICES, RunFilter
from runs.models import Deployment, Environment, Queue, Run, TaskDefinition
from runs.pagination import InvalidCursor, Page, paginate
from runs.statuses import DESCRIPTIONS, RunStatus
from runs.triggering import MACHINES

PAGE_SIZES = (25, 50, 100)
CURSOR_PARAMS = ("after", "before")
# Query parameters that are not filters (kept across filter changes where it makes sense).
VIEW_PARAMS = ("size", *CURSOR_PARAMS)
# The filters behind the "More filters" menu.
MORE_FILTERS = ("version", "queue", "machine", "batch", "parent", "is_test")
PERIOD_LABELS = {
    "5m": "Last 5 minutes",
    "30m": "Last 30 minutes",
    "1h": "Last hour",
    "6h": "Last 6 hours",
    "12h": "Last 12 hours",
    "1d": "Last 24 hours",
    "3d": "Last 3 days",
    "7d": "Last 7 days",
    "14d": "Last 14 days",
    "30d": "Last 30 days",
    "all": "All time",
}
# The chips of these fields clear several parameters at once.
CHIP_PARAMS = {"period": ("period", "from", "from_", "to")}


@dataclass
class Chip:
    name: str  # the filter field
    label: str
    value: str
    remove_query: str  # the current query without this filter


@dataclass
class RunListing:
    filter: RunFilter
    page: Page | None
    errors: list[str]
    size: int
    query: QueryDict  # the current query without cursors
    chips: list[Chip] = field(default_factory=list)

    @property
    def base_query(self) -> str:
        return self.query.urlencode()

    def cursor_query(self, name: str, cursor: str) -> str:
        query = self.query.copy()
        query[name] = cursor
        return query.urlencode()

    @property
    def next_query(self) -> str:
        return self.cursor_query("after", self.page.next_cursor) if self.page else ""

    @property
    def previous_query(self) -> str:
        return (
            self.cursor_query("before", self.page.previous_cursor) if self.page else ""
        )

    page_sizes = PAGE_SIZES

    @property
    def is_filtered(self) -> bool:
        return bool(self.chips)

    @property
    def narrowed(self) -> bool:
        """Filtered, or a later page: the empty table says no run matches (rather
        than that the environment has none)."""
        return self.is_filtered or bool(self.page and self.page.previous_cursor)

    @property
    def rows_html(self) -> SafeString:
        """The page's rows, from the one row partial (dashboard.rows)."""
        return render_run_rows(self.page.items if self.page else [])


class InvalidPageSize(ValueError):
    pass


def page_size(params: QueryDict) -> int:
    """`size` from the query string: one of PAGE_SIZES (the first when absent)."""
    value = (params.get("size") or "").strip()
    if not value:
        return PAGE_SIZES[0]
    if value.isdigit() and int(value) in PAGE_SIZES:
        return int(value)
    choices = ", ".join(map(str, PAGE_SIZES[:-1])) + f" or {PAGE_SIZES[-1]}"
    raise InvalidPageSize(f"Runs per page: must be {choices}, got {value[:20]!r}")


def list_runs(
    params: QueryDict, environment: Environment, *, fixed: dict | None = None
) -> RunListing:
    """One page of the environment's runs matching `params` (plus `fixed` filters a
    page imposes, such as its batch). Bad input becomes `errors`, never an exception."""
    data = params.copy()
    for key, value in (fixed or {}).items():
        data[key] = value
    runs = Run.objects.for_environment(environment).with_row_columns()
    run_filter = RunFilter(data, queryset=runs, environment=environment)
    errors = [] if run_filter.is_valid() else run_filter.error_messages()
    try:
        size = page_size(params)
    except InvalidPageSize as exc:
        size = PAGE_SIZES[0]
        errors.append(str(exc))
    page = None
    if not errors:
        try:
            page = paginate(
                run_filter.qs,
                size=size,
                after=params.get("after"),
                before=params.get("before"),
            )
        except InvalidCursor as exc:
            errors = [f"{exc}. Go back to the first page."]
    query = params.copy()
    for key in CURSOR_PARAMS:
        query.pop(key, None)
    listing = RunListing(run_filter, page, errors, size, query)
    listing.chips = filter_chips(run_filter, query, fixed or {})
    return listing


def filter_chips(run_filter: RunFilter, query: QueryDict, fixed: dict) -> list[Chip]:
    """The filters the view applies besides the defaults and the page's `fixed` ones."""
    chips = []
    for name, label, value in run_filter.describe():
        if name in fixed:
            continue
        if name == "period" and _is_default_period(query):
            continue  # the period button already says "Last 7 days"
        remove = query.copy()
        for key in CHIP_PARAMS.get(name, (name,)):
            remove.pop(key, None)
        chips.append(Chip(name, label, value, remove.urlencode()))
    return chips


def _is_default_period(query: QueryDict) -> bool:
    return (
        not (query.get("from") or query.get("to"))
        and (query.get("period") or DEFAULT_PERIOD) == DEFAULT_PERIOD
    )


def filter_options(environment: Environment, listing: RunListing) -> dict:
    """Choices for the filter bar: the environment's tasks, versions and queues (one
    small query each) plus whatever the current filter names that they lack."""
    data = listing.filter.form.cleaned_data if listing.filter.is_valid() else {}
    tasks = sorted(
        set(
            TaskDefinition.objects.filter(
                deployment__environment=environment
            ).values_list("slug", flat=True)
        )
        | set(data.get("task") or [])
    )
    versions = list(
        Deployment.objects.filter(environment=environment).values_list(
            "version", flat=True
        )[:50]
    )
    queues = sorted(
        set(
            Queue.objects.filter(environment=environment).values_list("name", flat=True)
        )
        | set(data.get("queue") or [])
    )
    return {
        **filter_state(listing),
        "status_groups": STATUS_GROUP_CHOICES,
        "statuses": [
            (value, label, DESCRIPTIONS.get(value, ""))
            for value, label in RunStatus.choices
        ],
        "tasks": tasks,
        "versions": versions,
        "queues": queues,
        "machines": MACHINES,
        "periods": [(p, PERIOD_LABELS[p]) for p in [*PERIODS, "all"]],
        "page_sizes": PAGE_SIZES,
    }


def filter_state(listing: RunListing) -> dict:
    """What the filter bar's buttons show (selection counts, the period), without a
    query: the htmx answer to a filter change sends them along with the table."""
    data = listing.filter.form.cleaned_data if listing.filter.is_valid() else {}
    return {
        "selected_statuses": set(data.get("status") or []),
        "selected_tasks": set(data.get("task") or []),
        "selected_machines": set(data.get("machine") or []),
        "period": listing.query.get("period") or DEFAULT_PERIOD,
        "period_label": _period_label(listing),
        "more_active": sum(bool(listing.query.get(name)) for name in MORE_FILTERS),
    }


def _period_label(listing: RunListing) -> str:
    if listing.query.get("from") or listing.query.get("to"):
        return "Custom range"
    period = listing.query.get("period") or DEFAULT_PERIOD
    return PERIOD_LABELS.get(period, f"Last {period}")
