"""Runs list and run page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from dashboard.rows import RUN_ROW_TEMPLATE, row_context
from dashboard.views.common import environment_page, page_context
from runs.actions import cancel_run
from runs.filters import RunFilter
from runs.models import Environment, Run
from runs.pagination import InvalidCursor, paginate

PAGE_SIZES = (25, 50, 100)


def _page_size(request: HttpRequest) -> int:
    try:
        size = int(request.GET.get("size", PAGE_SIZES[0]))
    except ValueError:
        return PAGE_SIZES[0]
    return size if size in PAGE_SIZES else PAGE_SIZES[0]


@environment_page
def runs_list(request: HttpRequest, environment: Environment) -> HttpResponse:
    runs = Run.objects.for_environment(environment).with_row_columns()
    run_filter = RunFilter(request.GET, queryset=runs)
    page, errors = None, []
    if run_filter.is_valid():
        try:
            page = paginate(
                run_filter.qs,
                size=_page_size(request),
                after=request.GET.get("after"),
                before=request.GET.get("before"),
            )
        except InvalidCursor as exc:
            errors = [str(exc)]
    else:
        errors = run_filter.error_messages()
    query = request.GET.copy()
    for key in ("after", "before"):
        query.pop(key, None)
    context = page_context(
        request,
        environment,
        "runs",
        filter=run_filter,
        page=page,
        errors=errors,
        query=query.urlencode(),
        live_url=f"/ws/env/{environment.slug}/runs/?{request.GET.urlencode()}",
    )
    template = "dashboard/runs_list.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#runs-table"
    return render(request, template, context)


@environment_page
def run_page(
    request: HttpRequest, environment: Environment, run_id: str
) -> HttpResponse:
    run = get_object_or_404(
        Run.objects.select_related(
            "environment", "batch", "parent", "root", "replayed_from"
        ),
        environment=environment,
        friendly_id=run_id,
    )
    context = page_context(
        request,
        environment,
        "runs",
        run=run,
        live_url=f"/ws/env/{environment.slug}/runs/{run.friendly_id}/",
    )
    return render(request, "dashboard/run_page.html", context)


@require_POST
@environment_page
def run_cancel(
    request: HttpRequest, environment: Environment, run_id: str
) -> HttpResponse:
    run = get_object_or_404(Run, environment=environment, friendly_id=run_id)
    cancel_run(run)
    row = Run.objects.with_row_columns().get(pk=run.pk)
    return render(request, RUN_ROW_TEMPLATE, row_context(row))
