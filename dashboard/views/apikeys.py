"""API keys: each environment's secret key, masked; reveal, copy, regenerate."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from dashboard.views.common import environment_page, page_context
from runs.access import environments_for_user
from runs.models import Environment


def mask(key: str) -> str:
    """tr_dev_abcdefghijklmnopqrstuvwx → tr_dev_••••••••••••••••uvwx"""
    prefix, _, secret = key.rpartition("_")
    return f"{prefix}_{'•' * max(len(secret) - 4, 4)}{secret[-4:]}"


def _card(environment: Environment, revealed: bool = False) -> dict:
    return {
        "env": environment,
        "masked": mask(environment.api_key),
        "key": environment.api_key if revealed else "",
        "revealed": revealed,
    }


@never_cache
@environment_page
def apikeys_page(request: HttpRequest, environment: Environment) -> HttpResponse:
    environments = sorted(
        environments_for_user(request.user), key=lambda e: e.pk != environment.pk
    )
    context = page_context(
        request,
        environment,
        "apikeys",
        cards=[_card(env) for env in environments],
    )
    return render(request, "dashboard/apikeys.html", context)


@never_cache
@environment_page
def apikey_reveal(request: HttpRequest, environment: Environment) -> HttpResponse:
    """The key card with the key shown (GET ?hide=1 masks it again); ?raw=1 answers
    with just the key, for the copy button."""
    if request.GET.get("raw") == "1":
        return HttpResponse(environment.api_key, content_type="text/plain")
    card = _card(environment, revealed=request.GET.get("hide") != "1")
    return render(request, "dashboard/apikeys.html#key-card", {"card": card})


@never_cache
@require_POST
@environment_page
def apikey_regenerate(request: HttpRequest, environment: Environment) -> HttpResponse:
    """A new secret key; the old one stops working at once. Answers with the card
    showing the new key."""
    environment.regenerate_api_key()
    if not request.htmx:
        return redirect("dashboard:apikeys", environment.slug)
    card = _card(environment, revealed=True)
    return render(
        request, "dashboard/apikeys.html#key-card", {"card": card, "regenerated": True}
    )
