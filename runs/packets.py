"""Payload and output packets: stored as received (a string plus its type), decoded on read."""

from __future__ import annotations

import json
from typing import Any

JSON = "application/json"
SUPERJSON = "application/super+json"
TEXT = "text/plain"
STORE = "application/store"

_MISSING = object()


def encode_value(value: Any) -> tuple[str, str]:
    """A Python value from the task SDK or a JSON body → (data, type)."""
    if value is None:
        return "", JSON
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False), JSON


def decode_packet(data: str | None, packet_type: str) -> Any:
    """The value a packet holds: JSON parsed, superjson's `json` part, text as is.
    Offloaded packets (application/store) have no inline value: returns None."""
    if data is None or data == "" or packet_type == STORE:
        return None
    if packet_type == TEXT:
        return data
    try:
        parsed = json.loads(data)
    except ValueError:
        return data
    if packet_type == SUPERJSON and isinstance(parsed, dict):
        return parsed.get("json")
    return parsed


def byte_size(data: str) -> int:
    return len(data.encode())
