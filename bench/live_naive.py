"""The naive live feed, for comparison in bench/live.py only: every committed change
is rendered by the producer and sent with a channel-layer `group_send` to a group of
every connection watching the environment; each consumer forwards every message.
No coalescing, no flow control, one message per change per connection."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
django_asgi_app = get_asgi_application()

from asgiref.sync import async_to_sync  # noqa: E402
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

GROUP = "bench-env-{}"


class NaiveRunsConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        if not self.scope["user"].is_authenticated:
            await self.close()
            return
        from runs.models import Environment

        env = await Environment.objects.aget(
            slug=self.scope["url_route"]["kwargs"]["env"]
        )
        self.group = GROUP.format(env.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data="<tbody id=runs-body></tbody>")  # ready marker

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def run_row(self, event: dict) -> None:
        await self.send(text_data=event["html"])


def publish_rows(run_ids: list[int]) -> None:
    """Render each changed run's row and group_send it (what a naive producer does)."""
    from dashboard.rows import render_run_row
    from runs.models import Run

    layer = get_channel_layer()
    for run in Run.objects.with_row_columns().filter(pk__in=run_ids):
        async_to_sync(layer.group_send)(
            GROUP.format(run.environment_id),
            {"type": "run.row", "html": render_run_row(run)},
        )


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(
                URLRouter(
                    [path("ws/env/<slug:env>/runs/", NaiveRunsConsumer.as_asgi())]
                )
            )
        ),
    }
)
