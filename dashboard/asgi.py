"""ASGI entry point: the API through a lean Django handler, other HTTP through Django's,
websockets through Channels."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from realtime.auth import SessionAuthMiddleware  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402
from runs.api.asgi import ApiHandler, route_api  # noqa: E402

# Threads per process serving API requests (each holds a pooled database connection
# while it works: keep it at or below DB_POOL_MAX_SIZE).
API_THREADS = int(os.environ.get("RUNWATCH_API_THREADS") or 4)

application = ProtocolTypeRouter(
    {
        "http": route_api(ApiHandler(API_THREADS), django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            SessionAuthMiddleware(URLRouter(websocket_urlpatterns))
        ),
    }
)
