"""Websocket URLs: `/ws` + the page's path."""

from __future__ import annotations

from django.urls import path, re_path

from realtime.consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/env/<slug:env>/runs/", LiveConsumer.as_asgi(page="runs")),
    path("ws/env/<slug:env>/runs/<str:run_id>/", LiveConsumer.as_asgi(page="run")),
    # any other page of an environment: header counters and the feed's state
    re_path(r"^ws/env/(?P<env>[-\w]+)/", LiveConsumer.as_asgi(page="page")),
]
