"""The websocket endpoint of every live page: `/ws` + the page's path (+ its query).

Thin on purpose: authenticate from the session, build the page's watch (one query,
in a thread), attach it to this process's hub, and pass acknowledgements and filter
changes on. Everything else lives in realtime.hub and realtime.watches.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import QueryDict

from realtime.hub import Connection, Hub
from realtime.watches import (
    BatchPageWatch,
    BulkActionsListWatch,
    BulkActionWatch,
    DeploymentsWatch,
    RunPageWatch,
    RunsListWatch,
    Watch,
)
from runs.access import environments_for_user
from runs.models import Batch, BulkAction, Run

# Close codes the htmx ws extension does not retry (it retries 1006/1011/1012/1013).
FORBIDDEN = 4403
NOT_FOUND = 4404


class LiveConsumer(AsyncWebsocketConsumer):
    # The live feed does not use a channel layer (docs/realtime.md): naming one that
    # is not configured keeps Channels from opening a Redis receive loop per socket.
    channel_layer_alias = "runwatch-live-feed-uses-no-channel-layer"
    connection: Connection | None = None

    def __init__(self, *args, page: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.page = page  # which page this route serves: as_asgi(page=...)

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close()  # before accept: the handshake fails with 403
            return
        page_path = self.scope["path"].removeprefix("/ws")
        query = QueryDict(self.scope.get("query_string", b"").decode("latin-1"))
        kwargs = self.scope["url_route"]["kwargs"]
        watch, code = await build_watch(user, self.page, page_path, query, kwargs)
        await self.accept()
        if watch is None:
            await self.close(code=code)
            return
        self.connection = Hub.current().attach(self, watch)

    async def send_message(self, message: dict) -> None:
        """The hub's path for live messages: the ASGI message straight to the server
        (the same dict for every connection of a flush tick)."""
        await self.base_send(message)

    async def dispatch(self, message: dict) -> None:
        # Channels closes stale database connections (a hop to its database thread)
        # before every handler; receiving touches no database, and with a thousand
        # tabs acknowledging that hop was a tenth of the server's time.
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data=None) -> None:
        if self.connection is None or not text_data:
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        hub = Hub.current()
        if isinstance(message.get("ack"), int):
            hub.ack(self.connection, message["ack"])
        if isinstance(message.get("watch"), str):
            url = urlsplit(message["watch"])
            nonce = message.get("n")
            nonce = nonce if isinstance(nonce, int) else 0
            hub.rewatch(self.connection, url.path, QueryDict(url.query), nonce)

    async def disconnect(self, code: int) -> None:
        if self.connection is not None:
            await Hub.current().detach(self.connection)
            self.connection = None


@database_sync_to_async
def build_watch(
    user, page: str, path: str, query: QueryDict, kwargs: dict
) -> tuple[Watch | None, int]:
    environment = environments_for_user(user).filter(slug=kwargs["env"]).first()
    if environment is None:
        return None, FORBIDDEN
    if page == "runs":
        return RunsListWatch(environment, path, query), 0
    if page == "run":
        run_id = (
            Run.objects.filter(environment=environment, friendly_id=kwargs["run_id"])
            .values_list("pk", flat=True)
            .first()
        )
        if run_id is None:
            return None, NOT_FOUND
        return RunPageWatch(environment, path, run_id), 0
    if page == "batch":
        batch = Batch.objects.filter(
            environment=environment, friendly_id=kwargs["batch_id"]
        ).first()
        if batch is None:
            return None, NOT_FOUND
        return BatchPageWatch(environment, path, query, batch), 0
    if page == "bulk":
        bulk_id = (
            BulkAction.objects.filter(
                environment=environment, friendly_id=kwargs["bulk_id"]
            )
            .values_list("pk", flat=True)
            .first()
        )
        if bulk_id is None:
            return None, NOT_FOUND
        return BulkActionWatch(environment, path, bulk_id), 0
    if page == "bulk-list":
        return BulkActionsListWatch(environment, path), 0
    if page == "deployments":
        return DeploymentsWatch(environment, path), 0
    return Watch(environment, path), 0
