"""The run row: rendered by the runs list page and by the live feed, from one partial.

Nothing per-user or per-request goes into a row, so the live feed renders it once per
change per process and sends the same HTML to every connection watching it.
"""

from __future__ import annotations

from django.template.loader import get_template

from runs.models import Run

RUN_ROW_TEMPLATE = "runs/_partials.html#run-row"


def row_context(run: Run, *, stale: bool = False) -> dict:
    """Everything the row partial needs; `run` must come from `with_row_columns()`.
    `stale`: the live feed marks a shown run that stopped matching the list's filters."""
    return {"run": run, "env_slug": run.environment.slug, "stale": stale}


def render_run_row(run: Run, *, stale: bool = False) -> str:
    return get_template(RUN_ROW_TEMPLATE).render(row_context(run, stale=stale))
