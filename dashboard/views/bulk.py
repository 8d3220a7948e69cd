"""Bulk actions in the dashboard: the panel on the runs list (preview and submit), the
bulk actions list, a bulk action's page, abort and "replay these runs again".

The work is `runs.bulk`'s; these views parse input, call it and render.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from dashboard.bulk_presenters import bulk_context, items_page
from dashboard.listing import page_size
from dashboard.views.common import environment_page, page_context
from runs import bulk as bulk_service
from runs.errors import RunError
from runs.models import BulkAction, BulkActionType, Environment
from runs.pagination import InvalidCursor, paginate

PANEL = "dashboard/_bulk_panel.html"
ACTIONS = {"cancel": BulkActionType.CANCEL, "replay": BulkActionType.REPLAY}


def _wants_partial(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def _bulk_actions(environment: Environment):
    return BulkAction.objects.filter(environment=environment).select_related(
        "environment", "created_by", "aborted_by"
    )


# --- the panel on the runs list ---------------------------------------------------------


@dataclass
class PanelInput:
    """What the panel sends: the runs list's query string, the ticked runs, choices."""

    query: str
    run_ids: list[str]
    use_selection: bool
    action: str
    use_current_version: bool
    name: str

    @classmethod
    def parse(cls, post: QueryDict) -> PanelInput:
        run_ids = [r for r in post.getlist("runIds") if r.strip()]
        return cls(
            query=post.get("query", "").lstrip("?"),
            run_ids=run_ids,
            use_selection=bool(run_ids) and post.get("target", "selection") != "filter",
            action=post.get("action") if post.get("action") in ACTIONS else "cancel",
            use_current_version=post.get("version", "current") != "original",
            name=post.get("name", ""),
        )

    def target(self, environment: Environment) -> bulk_service.BulkTarget:
        if self.use_selection:
            return bulk_service.target_from_run_ids(environment, self.run_ids)
        return bulk_service.target_from_filter(environment, QueryDict(self.query))


def _panel(
    request: HttpRequest, environment: Environment, choice: PanelInput, error: str = ""
) -> HttpResponse:
    preview = None
    if not error:
        try:
            preview = bulk_service.preview(
                choice.target(environment), ACTIONS[choice.action]
            )
        except RunError as exc:
            error = exc.message
    try:
        filter_summary = bulk_service.target_from_filter(
            environment, QueryDict(choice.query)
        ).describe()
    except RunError:
        filter_summary = ""
    context = {
        "environment": environment,
        "choice": choice,
        "filter_summary": filter_summary,
        "preview": preview,
        "error": error,
        "max_targets": bulk_service.MAX_TARGETS,
        "more": preview.targeted - len(preview.runs) if preview else 0,
        "finished": preview.targeted - preview.eligible if preview else 0,
    }
    return render(request, PANEL, context)


@require_POST
@environment_page
def bulk_preview(request: HttpRequest, environment: Environment) -> HttpResponse:
    """The panel with the exact counts and the first runs: a dry run, nothing changes."""
    return _panel(request, environment, PanelInput.parse(request.POST))


@require_POST
@environment_page
def bulk_create(request: HttpRequest, environment: Environment) -> HttpResponse:
    """Record the bulk action and go to its page at once; workers do the rest."""
    choice = PanelInput.parse(request.POST)
    try:
        created = bulk_service.create_bulk_action(
            choice.target(environment),
            ACTIONS[choice.action],
            name=choice.name,
            use_current_version=choice.use_current_version,
            user=request.user,
            via="dashboard",
        )
    except RunError as exc:
        return _panel(request, environment, choice, error=exc.message)
    url = reverse("dashboard:bulk-action", args=[environment.slug, created.friendly_id])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


# --- pages ------------------------------------------------------------------------------


@environment_page
def bulk_actions_list(request: HttpRequest, environment: Environment) -> HttpResponse:
    page, errors = None, []
    try:
        page = paginate(
            _bulk_actions(environment),
            size=page_size(request.GET),
            after=request.GET.get("after"),
            before=request.GET.get("before"),
        )
    except InvalidCursor as exc:
        errors = [f"{exc}. Go back to the first page."]
    context = page_context(
        request,
        environment,
        "bulk-actions",
        page=page,
        rows=[bulk_context(b) for b in page.items] if page else [],
        errors=errors,
        live_url=f"/ws{request.get_full_path()}",
    )
    template = "dashboard/bulk_actions.html"
    if _wants_partial(request):
        template += "#bulk-table"
    return render(request, template, context)


@environment_page
def bulk_action_page(
    request: HttpRequest, environment: Environment, bulk_id: str
) -> HttpResponse:
    bulk = get_object_or_404(_bulk_actions(environment), friendly_id=bulk_id)
    after, before = request.GET.get("after"), request.GET.get("before")
    try:
        items = items_page(bulk, after=after, before=before)
        errors = []
    except InvalidCursor as exc:
        items, errors = items_page(bulk), [f"{exc}. Showing the latest runs."]
        after = before = None
    context = {
        **bulk_context(bulk),
        "items": items,
        "latest": not (after or before),
        "errors": errors,
        "again_count": 0
        if bulk.is_active
        else bulk_service.count_targets(bulk_service.target_from_bulk_action(bulk)),
    }
    part = request.GET.get("part")
    if _wants_partial(request) and part in ("summary", "items"):
        return render(request, f"dashboard/bulk_action.html#bulk-{part}", context)
    context = page_context(
        request,
        environment,
        "bulk-actions",
        **context,
        live_url=f"/ws{request.path}",
    )
    return render(request, "dashboard/bulk_action.html", context)


@require_POST
@environment_page
def bulk_abort(
    request: HttpRequest, environment: Environment, bulk_id: str
) -> HttpResponse:
    """Abort from the list (answers with the row) or the bulk action's page (its summary)."""
    bulk = get_object_or_404(_bulk_actions(environment), friendly_id=bulk_id)
    bulk_service.abort_bulk_action(bulk, user=request.user, via="dashboard")
    bulk = _bulk_actions(environment).get(pk=bulk.pk)
    if not request.htmx:
        return redirect("dashboard:bulk-action", environment.slug, bulk.friendly_id)
    if request.htmx.target == f"bulk-row-{bulk.friendly_id}":
        return render(request, "dashboard/_bulk_row.html", bulk_context(bulk))
    return render(request, "dashboard/_bulk_summary.html", bulk_context(bulk))


@require_POST
@environment_page
def bulk_replay_again(
    request: HttpRequest, environment: Environment, bulk_id: str
) -> HttpResponse:
    """A new replay bulk action over the runs this one canceled or replayed."""
    bulk = get_object_or_404(_bulk_actions(environment), friendly_id=bulk_id)
    try:
        created = bulk_service.create_bulk_action(
            bulk_service.target_from_bulk_action(bulk),
            BulkActionType.REPLAY,
            name=request.POST.get("name", ""),
            use_current_version=request.POST.get("version", "current") != "original",
            user=request.user,
            via="dashboard",
        )
    except RunError as exc:
        if not request.htmx:
            messages.error(request, exc.message)
            return redirect("dashboard:bulk-action", environment.slug, bulk_id)
        response = HttpResponse(exc.message, content_type="text/plain")
        response["HX-Retarget"] = "#replay-again-error"
        response["HX-Reswap"] = "innerHTML"
        return response
    url = reverse("dashboard:bulk-action", args=[environment.slug, created.friendly_id])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
