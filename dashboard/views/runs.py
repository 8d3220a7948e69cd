"""Runs list and run page, and the run actions (cancel, replay, reschedule)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from dashboard.forms import ReplayForm, RescheduleForm
from dashboard.listing import filter_options, filter_state, list_runs
from dashboard.presenters import (
    events_before,
    render_run_fragments,
    run_page_context,
)
from dashboard.rows import render_run_row
from dashboard.views.common import environment_page, page_context
from runs.access import environments_for_user
from runs.actions import cancel_run, reschedule
from runs.errors import RunError
from runs.models import Environment, Run
from runs.triggering import replay


def _wants_partial(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


@environment_page
def runs_list(request: HttpRequest, environment: Environment) -> HttpResponse:
    listing = list_runs(request.GET, environment)
    if _wants_partial(request):
        return render(
            request,
            "dashboard/runs_list.html#runs-table",
            {
                "listing": listing,
                "environment": environment,
                "filter_options": filter_state(listing),
                "filter_summaries_oob": True,
            },
        )
    context = page_context(
        request,
        environment,
        "runs",
        listing=listing,
        filter_options=filter_options(environment, listing),
        live_url=f"/ws{request.get_full_path()}",
    )
    return render(request, "dashboard/runs_list.html", context)


def _get_run(environment: Environment, run_id: str) -> Run:
    return get_object_or_404(Run, environment=environment, friendly_id=run_id)


@environment_page
def run_page(
    request: HttpRequest, environment: Environment, run_id: str
) -> HttpResponse:
    run = get_object_or_404(
        Run.objects.select_related("environment", "batch", "deployment"),
        environment=environment,
        friendly_id=run_id,
    )
    context = page_context(
        request,
        environment,
        "runs",
        **run_page_context(run),
        live_url=f"/ws{request.path}",
        open_replay=request.GET.get("replay") == "1",
    )
    return render(request, "dashboard/run_page.html", context)


@environment_page
def run_events(
    request: HttpRequest, environment: Environment, run_id: str
) -> HttpResponse:
    """Earlier rows of the run page's log (`?before=<event id>`), to prepend, and the
    "Load earlier events" button for the rows before those."""
    run = get_object_or_404(
        Run.objects.select_related("environment"),
        environment=environment,
        friendly_id=run_id,
    )
    try:
        before = int(request.GET.get("before", ""))
    except ValueError:
        return HttpResponse("before must be an event id", status=400)
    events, earlier = events_before(run, before)
    context = {
        "run": run,
        "env_slug": environment.slug,
        "events": events,
        "earlier_events": earlier,
        "first_event_id": events[0].pk if events else 0,
        "oob": True,
    }
    return render(request, "dashboard/_run_events_page.html", context)


@require_POST
@environment_page
def run_cancel(
    request: HttpRequest, environment: Environment, run_id: str
) -> HttpResponse:
    """Cancel from the runs list (answers with the row) or the run page (its fragments)."""
    run = _get_run(environment, run_id)
    cancel_run(run)
    if not request.htmx:
        return redirect("dashboard:run", environment.slug, run.friendly_id)
    if request.htmx.target == f"run-{run.friendly_id}":
        return HttpResponse(
            render_run_row(Run.objects.with_row_columns().get(pk=run.pk))
        )
    run.refresh_from_db()
    return HttpResponse(render_run_fragments(run))


@environment_page
def run_replay(
    request: HttpRequest, environment: Environment, run_id: str
) -> HttpResponse:
    """The Replay dialog (GET) and its submission (POST): a new run of the same task
    with the (edited) payload and metadata, in the chosen environment."""
    run = _get_run(environment, run_id)
    environments = environments_for_user(request.user)
    if request.method == "POST":
        form = ReplayForm(request.POST, run=run, environments=environments)
        if form.is_valid():
            try:
                new_run = replay(run, form.overrides())
            except RunError as exc:
                form.add_error(
                    exc.field if exc.field in form.fields else None, exc.message
                )
            else:
                url = reverse(
                    "dashboard:run",
                    args=[new_run.environment.slug, new_run.friendly_id],
                )
                return (
                    HttpResponseClientRedirect(url) if request.htmx else redirect(url)
                )
    else:
        form = ReplayForm(run=run, environments=environments)
    context = {"run": run, "form": form, "environment": environment}
    if request.htmx:
        return render(request, "dashboard/_replay_dialog.html", context)
    return render(
        request,
        "dashboard/replay_page.html",
        page_context(request, environment, "runs", **context),
    )


@environment_page
def run_reschedule(
    request: HttpRequest, environment: Environment, run_id: str
) -> HttpResponse:
    """The Reschedule dialog (GET) and its submission (POST) for a DELAYED run."""
    run = _get_run(environment, run_id)
    if request.method == "POST":
        form = RescheduleForm(request.POST)
        if form.is_valid():
            try:
                reschedule(run, form.cleaned_data["delay"])
            except RunError as exc:
                form.add_error("delay", exc.message)
            else:
                url = reverse("dashboard:run", args=[environment.slug, run.friendly_id])
                return (
                    HttpResponseClientRedirect(url) if request.htmx else redirect(url)
                )
    else:
        form = RescheduleForm()
    context = {"run": run, "form": form, "environment": environment}
    if request.htmx:
        return render(request, "dashboard/_reschedule_dialog.html", context)
    return render(
        request,
        "dashboard/reschedule_page.html",
        page_context(request, environment, "runs", **context),
    )
