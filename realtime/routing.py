"""Websocket URLs: `/ws` + the page's path."""

from __future__ import annotations

from django.urls import path, re_path

from realtime.consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/env/<slug:env>/runs/", LiveConsumer.as_asgi(page="runs")),
    path("ws/env/<slug:env>/runs/<str:run_id>/", LiveConsumer.as_asgi(page="run")),
    path(
        "ws/env/<slug:env>/batches/<str:batch_id>/",
        LiveConsumer.as_asgi(page="batch"),
    ),
    path(
        "ws/env/<slug:env>/bulk-actions/<str:bulk_id>/",
        LiveConsumer.as_asgi(page="bulk"),
    ),
    path("ws/env/<slug:env>/bulk-actions/", LiveConsumer.as_asgi(page="bulk-list")),
    path("ws/env/<slug:env>/deployments/", LiveConsumer.as_asgi(page="deployments")),
    # any other page of an environment: header counters and the feed's state
    re_path(r"^ws/env/(?P<env>[-\w]+)/", LiveConsumer.as_asgi(page="page")),
]
