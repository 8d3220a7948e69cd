"""The OpenAPI document and the human page."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, get_resolver

pytestmark = pytest.mark.django_db


def test_openapi_document_describes_every_endpoint():
    spec = Client().get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    for path, method in [
        ("/api/v1/tasks/{taskIdentifier}/trigger", "post"),
        ("/api/v3/batches", "post"),
        ("/api/v3/batches/{batchId}/items", "post"),
        ("/api/v2/tasks/batch", "post"),
        ("/api/v1/tasks/batch", "post"),
        ("/api/v1/runs", "get"),
        ("/api/v3/runs/{runId}", "get"),
        ("/api/v2/runs/{runId}/cancel", "post"),
        ("/api/v1/runs/{runId}/replay", "post"),
        ("/api/v1/runs/{runId}/reschedule", "post"),
        ("/api/v1/runs/{runId}/metadata", "put"),
        ("/api/v1/runs/{runId}/metadata", "get"),
        ("/api/v1/runs/{runId}/tags", "post"),
        ("/api/v2/batches/{batchId}", "get"),
        ("/api/v1/batches/{batchId}", "get"),
        ("/api/v2/packets/{path}", "put"),
        ("/api/v1/packets/{path}", "get"),
        ("/api/v1/idempotencyKeys/{key}/reset", "post"),
    ]:
        operation = paths[path][method]
        assert operation["summary"]
        assert {"200", "202"} & set(operation["responses"])
        assert "401" in operation["responses"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    run = spec["components"]["schemas"]["Run"]
    assert {"relatedRuns", "triggerFunction", "depth"} <= set(run["required"])


def test_every_api_route_is_documented():
    spec = Client().get("/api/openapi.json").json()
    documented = {p.replace("{", "<").split("<")[0] for p in spec["paths"]}
    from runs.api import urls

    undocumented = []
    for pattern in urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        route = "/api/" + str(pattern.pattern).split("<")[0]
        if pattern.name in {
            "api-packet-transfer",
            "api-openapi",
            "api-docs",
            "api-jwt-claims",
            "api-run-packet",
        }:
            continue
        if route not in documented:
            undocumented.append(route)
    assert undocumented == []
    assert get_resolver().resolve("/api/openapi.json")


def test_docs_page_renders_from_the_document_without_a_cdn():
    response = Client().get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/v1/tasks/{taskIdentifier}/trigger" in html
    assert "Trigger a task" in html
    assert "https://" not in html.split("<body>")[0]  # no external assets in <head>
    assert "/static/css/app.css" in html


def test_docs_page_escapes_text_and_shows_backticks_as_code():
    from runs.api.views.docs import inline_code

    assert (
        inline_code("use `x-trigger-jwt` <b>")
        == "use <code>x-trigger-jwt</code> &lt;b&gt;"
    )


def test_every_reference_in_the_document_resolves():
    spec = Client().get("/api/openapi.json").json()
    refs = []

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    assert refs
    for ref in refs:
        _, section, kind, name = ref.split("/")
        assert (section, kind) == ("components", "schemas")
        assert name in spec["components"]["schemas"], ref
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            assert method in {"get", "post", "put"}
            params = {
                p["name"] for p in operation.get("parameters", []) if p["in"] == "path"
            }
            assert params == set(re.findall(r"{(\w+)}", path)), path
