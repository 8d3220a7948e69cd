"""Websocket test helpers: connect through the real ASGI stack (origin check, session
auth, URL routing) with a signed-in user's session cookie."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from dashboard.asgi import application

ORIGIN = (b"origin", b"http://localhost")
ROW = re.compile(r'<tr id="run-(run_\w+)" class="([^"]*)" data-status="(\w+)"')


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def rows_in(message: str) -> dict[str, tuple[str, bool]]:
    """run friendly id → (status, stale) for every run row in a pushed message."""
    return {
        fid: (status, "stale" in classes.split())
        for fid, classes, status in ROW.findall(message)
    }


@pytest.fixture
async def connect():
    """await connect(user_or_None, "/ws/env/dev/runs/?status=QUEUED") → a communicator
    through the real stack; all are disconnected when the test ends."""
    opened: list[WebsocketCommunicator] = []

    async def _connect(user, path: str, *, expect: bool = True, origin=ORIGIN):
        headers = [origin]
        if user is not None:
            headers.append((b"cookie", await sync_to_async(session_cookie)(user)))
        communicator = WebsocketCommunicator(application, path, headers=headers)
        opened.append(communicator)
        connected, _ = await communicator.connect(timeout=5)
        assert connected is expect
        return communicator

    yield _connect
    for communicator in opened:
        await communicator.disconnect()
