"""Query shapes for runs, shared by the dashboard, the API, bulk actions and the live feed."""

from __future__ import annotations

from django.db import models

# What a runs-list row shows: one query per page, nothing lazy-loaded per row.
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
    "metadata",
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


class RunQuerySet(models.QuerySet):
    def for_environment(self, environment) -> RunQuerySet:
        return self.filter(environment=environment)

    def with_row_columns(self) -> RunQuerySet:
        """Just the columns the row partial renders, with environment and batch joined."""
        return self.select_related("environment", "batch").only(*ROW_COLUMNS)
