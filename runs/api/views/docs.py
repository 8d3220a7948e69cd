"""The OpenAPI document and its human-readable page (rendered server-side from the
document; assets come from `static/`, nothing from a CDN)."""

from __future__ import annotations

from pathlib import Path

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import Context, Engine

from runs.api.openapi import document, operations

_PAGE = Path(__file__).resolve().parent.parent / "docs_page.html"


def _server_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def openapi_document(request: HttpRequest) -> HttpResponse:
    return JsonResponse(document(_server_url(request)))


def docs_page(request: HttpRequest) -> HttpResponse:
    spec = document(_server_url(request))
    template = Engine.get_default().from_string(_PAGE.read_text())
    html = template.render(Context({"spec": spec, "operations": operations(spec)}))
    return HttpResponse(html)
