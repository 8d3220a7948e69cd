"""Session authentication for websockets that leaves `send` alone.

Channels' AuthMiddlewareStack wraps every outgoing message in its session middleware
(to save a modified session before an HTTP response starts). The live feed never
modifies a session and sends thousands of messages a second per process, so this
resolves the signed-in user once, at the handshake, from the same session cookie and
with the same checks (channels.auth.get_user: backend, session hash), and passes the
server's `send` through untouched.
"""

from __future__ import annotations

from importlib import import_module

from channels.auth import get_user
from django.conf import settings
from django.http.cookie import parse_cookie


class SessionAuthMiddleware:
    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        session = session_of(scope)
        scope = dict(scope, session=session)
        scope["user"] = await get_user(scope)
        return await self.inner(scope, receive, send)


def session_of(scope):
    """The Django session named by the handshake's session cookie (empty if none)."""
    header = b"; ".join(v for k, v in scope.get("headers", ()) if k == b"cookie")
    key = parse_cookie(header.decode("latin-1")).get(settings.SESSION_COOKIE_NAME)
    return import_module(settings.SESSION_ENGINE).SessionStore(key)
