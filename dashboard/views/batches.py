"""Batches list and batch page (its runs are the runs list filtered to the batch)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from dashboard.listing import filter_options, filter_state, list_runs, page_size
from dashboard.presenters import batch_context, status_counts
from dashboard.views.common import environment_page, page_context
from runs.filters import BatchFilter
from runs.models import Batch, BatchStatus, Environment
from runs.pagination import InvalidCursor, paginate


@environment_page
def batches_list(request: HttpRequest, environment: Environment) -> HttpResponse:
    batch_filter = BatchFilter(
        request.GET, queryset=Batch.objects.filter(environment=environment)
    )
    page, errors = None, []
    if batch_filter.is_valid():
        try:
            page = paginate(
                batch_filter.qs.select_related("environment"),
                size=page_size(request.GET),
                after=request.GET.get("after"),
                before=request.GET.get("before"),
            )
        except InvalidCursor as exc:
            errors = [f"{exc}. Go back to the first page."]
    else:
        errors = batch_filter.error_messages()
    items = page.items if page else []
    counts = status_counts([b.pk for b in items])
    query = request.GET.copy()
    for key in ("after", "before"):
        query.pop(key, None)
    context = page_context(
        request,
        environment,
        "batches",
        page=page,
        rows=[batch_context(b, counts[b.pk]) for b in items],
        errors=errors,
        query=query.urlencode(),
        statuses=BatchStatus.choices,
        selected_statuses=set(
            batch_filter.form.cleaned_data.get("status") or []
            if batch_filter.is_valid()
            else []
        ),
        live_url=f"/ws{request.get_full_path()}",
    )
    template = "dashboard/batches.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#batches-table"
    return render(request, template, context)


@environment_page
def batch_page(
    request: HttpRequest, environment: Environment, batch_id: str
) -> HttpResponse:
    batch = get_object_or_404(
        Batch.objects.select_related("environment"),
        environment=environment,
        friendly_id=batch_id,
    )
    listing = list_runs(
        request.GET, environment, fixed={"batch": batch.friendly_id, "period": "all"}
    )
    if request.htmx and not request.htmx.history_restore_request:
        return render(
            request,
            "dashboard/batch_page.html#runs-table",
            {
                "listing": listing,
                "environment": environment,
                "filter_options": filter_state(listing),
                "filter_summaries_oob": True,
                "hide_period": True,
            },
        )
    context = page_context(
        request,
        environment,
        "batches",
        **batch_context(batch),
        listing=listing,
        filter_options=filter_options(environment, listing),
        hide_period=True,
        live_url=f"/ws{request.get_full_path()}",
    )
    return render(request, "dashboard/batch_page.html", context)
