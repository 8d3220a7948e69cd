"""The OpenAPI document and its human-readable page (rendered server-side from the
document; assets come from `static/`, nothing from a CDN)."""

from __future__ import annotations

import re
from pathlib import Path

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import Context, Engine
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from runs.api.openapi import document, operations

_PAGE = Path(__file__).resolve().parent.parent / "docs_page.html"


def _server_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def openapi_document(request: HttpRequest) -> HttpResponse:
    return JsonResponse(document(_server_url(request)))


def inline_code(text: str) -> SafeString:
    """Escape `text`, then show its `backticked` parts as code."""
    return mark_safe(re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text)))


def docs_page(request: HttpRequest) -> HttpResponse:
    spec = document(_server_url(request))
    items = operations(spec)
    for item in items:
        item["description"] = inline_code(item["op"].get("description", ""))
        for answer in item["op"]["responses"].values():
            answer["description"] = inline_code(answer["description"])
        for param in item["op"].get("parameters", []):
            param["description"] = inline_code(param.get("description", ""))
    context = {
        "spec": spec,
        "intro": inline_code(spec["info"]["description"]),
        "operations": items,
    }
    template = Engine.get_default().from_string(_PAGE.read_text())
    return HttpResponse(template.render(Context(context)))
