"""Query shapes for runs, shared by the dashboard, the API, bulk actions and the live feed."""

from __future__ import annotations

from django.db import connection, models
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTransform

from runs.statuses import GROUPS

# What a runs-list row shows: one query per page, nothing lazy-loaded per row. The
# metadata itself (up to 256 KB a run) is not loaded: only its `progress` key is.
ROW_COLUMNS = (
    "id",
    "friendly_id",
    "number",
    "environment_id",
    "environment__slug",
    "task_identifier",
    "status",
    "version",
    "tags",
    "is_test",
    "batch_id",
    "batch__friendly_id",
    "depth",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "delay_until",
    "duration_ms",
    "queue",
    "machine",
    "ttl",
    "attempt_count",
    "max_attempts",
    "idempotency_key_user",
)

# Header counters stop counting here: "10,000+" is as useful as an exact number and
# keeps the count an index range scan of bounded length.
COUNTER_CAP = 10_000


def progress_fraction(value: object) -> float | None:
    """A metadata `progress` value as a 0–1 fraction, or None when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(0.0, min(1.0, float(value)))


def pk_in(ids: list[int]) -> Q:
    """`pk IN ids`. On PostgreSQL the ids travel as one array parameter: thousands of
    ids cost one parameter to build and to parse, not thousands."""
    if connection.vendor == "postgresql":
        return Q(pk__in=RawSQL("SELECT unnest(%s::bigint[])", (list(ids),)))
    return Q(pk__in=list(ids))


class RunQuerySet(models.QuerySet):
    def for_environment(self, environment) -> RunQuerySet:
        return self.filter(environment=environment)

    def with_row_columns(self) -> RunQuerySet:
        """Just the columns the row partial renders, with environment and batch joined
        and `metadata_progress` (the metadata's `progress` key) annotated."""
        return (
            self.select_related("environment", "batch")
            .only(*ROW_COLUMNS)
            .annotate(metadata_progress=KeyTransform("progress", "metadata"))
        )

    def in_status_group(self, group: str) -> RunQuerySet:
        return self.filter(status__in=GROUPS[group])

    def count_capped(self, cap: int = COUNTER_CAP) -> int:
        """COUNT(*) of at most `cap` rows (a LIMITed subquery), for live counters."""
        return self.order_by()[:cap].count()
