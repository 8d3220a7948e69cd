"""ASGI entry points.

`application` (daphne, `manage.py serve`): the API through a lean Django handler, other
HTTP through Django's, websockets through Channels.

`api_application` (uvicorn, for `/api/` traffic): the same HTTP routing without
websockets. uvicorn's HTTP layer (httptools, uvloop) costs about a third less CPU per
API request than daphne's Twisted one (docs/benchmarks.md, API), so API-heavy
deployments may route `/api/` to uvicorn processes and everything else to daphne.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from realtime.auth import SessionAuthMiddleware  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402
from runs.api.asgi import ApiHandler, http_only, route_api  # noqa: E402

# Threads per process serving API requests (each holds a pooled database connection
# while it works: keep it at or below DB_POOL_MAX_SIZE).
API_THREADS = int(os.environ.get("RUNWATCH_API_THREADS") or 4)

http_application = route_api(ApiHandler(API_THREADS), django_asgi_app)

application = ProtocolTypeRouter(
    {
        "http": http_application,
        "websocket": AllowedHostsOriginValidator(
            SessionAuthMiddleware(URLRouter(websocket_urlpatterns))
        ),
    }
)

api_application = http_only(http_application)
