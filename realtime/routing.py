"""Websocket URLs: `/ws` + the page's path."""

from __future__ import annotations

from django.urls import path

from realtime.consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/env/<slug:env>/runs/", LiveConsumer.as_asgi(page="runs")),
]
