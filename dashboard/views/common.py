"""What every dashboard page shares: the signed-in user, the chosen environment."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from dashboard.presenters import env_counters
from runs.access import environments_for_user
from runs.models import Environment

# Sections a switch of environment may land on (the sidebar's pages).
SECTIONS = {
    "runs",
    "batches",
    "bulk-actions",
    "tasks",
    "test",
    "deployments",
    "apikeys",
}


def environment_page(view: Callable) -> Callable:
    """Require a signed-in user with access to the environment in the URL (404 otherwise)
    and pass it to the view as its second argument."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, env: str, *args, **kwargs) -> HttpResponse:
        # The user's environments in one query: the page's switcher lists them all
        # (page_context), and the one in the URL is among them or is a 404.
        request.environments = list(environments_for_user(request.user))
        environment = next((e for e in request.environments if e.slug == env), None)
        if environment is None:
            raise Http404("No such environment")
        request.environment = environment
        return view(request, environment, *args, **kwargs)

    return wrapper


def page_context(
    request: HttpRequest, environment: Environment, section: str, **extra
) -> dict:
    """The context base.html needs: environment switcher, navigation, header counters
    and (through `extra`) the page's live feed URL."""
    return {
        "environment": environment,
        "environments": request.environments,
        "env_counters": env_counters(environment),
        "nav_section": section,
        **extra,
    }


@login_required
def home(request: HttpRequest) -> HttpResponse:
    environments = list(environments_for_user(request.user))
    if not environments:
        return HttpResponse(
            "Your account has no access to any environment. Ask an administrator to add you.",
            status=403,
            content_type="text/plain",
        )
    chosen = next((e for e in environments if e.slug == "dev"), environments[0])
    return redirect("dashboard:runs", chosen.slug)


@environment_page
def switch_environment(request: HttpRequest, environment: Environment) -> HttpResponse:
    section = request.GET.get("section", "runs")
    if section not in SECTIONS:
        section = "runs"
    return redirect(f"dashboard:{section}", environment.slug)
