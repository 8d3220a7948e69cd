"""A lean ASGI handler for `/api/`: the same URLs, views and error handling as the rest
of the site, without the dashboard's middleware and without Django's per-request
thread machinery.

Django's own `ASGIHandler` runs a sync view in a new thread per request, and every
`MiddlewareMixin` middleware (sessions, auth, messages, CSRF, htmx) adds hops between
the event loop and that thread: about 3.5 ms of CPU per request on the reference
machine, more than the trigger itself. The API authenticates by bearer key, so it needs
none of those. Here the body is read on the event loop, then the whole request
(signals, middleware, view, response close) runs as one call on a fixed pool of
threads, with only `API_MIDDLEWARE`, all of them synchronous. Those threads live on,
so they keep their database connections between requests (`hold_connections`).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.db import connections
from django.http import HttpResponse
from django.urls import set_script_prefix
from django.utils.module_loading import import_string

# Security headers as on every page; Common for the same slash/host handling;
# X-Frame-Options for the HTML docs page. No session, auth, messages or CSRF
# (every API view is CSRF-exempt and authenticates by bearer key).
API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

HOLD_CONNECTIONS_SECONDS = 300


class ApiHandler(ASGIHandler):
    """Serves HTTP requests with `API_MIDDLEWARE` only, each in one worker thread."""

    def __init__(self, threads: int) -> None:
        BaseHandler.__init__(self)
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._load_api_middleware()
        os.register_at_fork(after_in_child=self._forget_executor)

    def _load_api_middleware(self) -> None:
        """BaseHandler.load_middleware(is_async=False) over API_MIDDLEWARE."""
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(API_MIDDLEWARE):
            middleware = import_string(path)(handler)
            if hasattr(middleware, "process_view"):
                self._view_middleware.insert(0, middleware.process_view)
            if hasattr(middleware, "process_template_response"):
                self._template_response_middleware.append(
                    middleware.process_template_response
                )
            if hasattr(middleware, "process_exception"):
                self._exception_middleware.append(middleware.process_exception)
            handler = convert_exception_to_response(middleware)
        self._middleware_chain = handler

    def _forget_executor(self) -> None:
        # A forked child (test servers) does not inherit the parent's threads.
        self._executor = None
        self._executor_lock = threading.Lock()

    def executor(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.threads, thread_name_prefix="api"
                )
            return self._executor

    async def __call__(self, scope, receive, send) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(
            self.executor(), self._respond, scope, body_file
        )
        if not response.streaming:
            await self.send_response(response, send)
            return
        try:  # a file download: its iterator needs the request still open
            await self.send_response(response, send)
        finally:
            await loop.run_in_executor(self.executor(), _close, response)

    def _respond(self, scope, body_file) -> HttpResponse:
        """Everything synchronous about one request, in a worker thread. Closes the
        response (request_finished: the database connection goes back to the pool)
        unless it streams."""
        try:
            set_script_prefix(get_script_prefix(scope))
            signals.request_started.send(sender=self.__class__, scope=scope)
            request, response = self.create_request(scope, body_file)
            if request is not None:
                response = self.get_response(request)
        except BaseException:
            body_file.close()
            hold_connections()
            signals.request_finished.send(sender=self.__class__)
            raise
        if not response.streaming:
            body_file.close()
            hold_connections()
            response.close()
        return response


def _close(response: HttpResponse) -> None:
    hold_connections()
    response.close()


def hold_connections() -> None:
    """Let this worker thread keep its database connections between requests, for up
    to HOLD_CONNECTIONS_SECONDS. Under the pool (CONN_MAX_AGE=0) Django would hand
    them back after every request, and taking one out again costs the pool's health
    check round trip. Django's end-of-request checks still apply: a connection left
    in a transaction or broken by an error is closed (back to the pool) as before."""
    for conn in connections.all(initialized_only=True):
        raw = conn.connection
        if raw is not None and getattr(conn, "_held_connection", None) is not raw:
            conn._held_connection = raw
            conn.close_at = time.monotonic() + HOLD_CONNECTIONS_SECONDS


def route_api(api, other):
    """An ASGI app sending HTTP requests under /api/ to `api`, the rest to `other`."""

    async def app(scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            await api(scope, receive, send)
        else:
            await other(scope, receive, send)

    return app


def http_only(http):
    """An ASGI app serving HTTP through `http`, answering the server's lifespan
    messages (so uvicorn needs no `--lifespan off`) and refusing websockets (the
    live feed is daphne's: `dashboard.asgi:application`)."""

    async def app(scope, receive, send) -> None:
        if scope["type"] == "http":
            await http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1000})

    return app


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
