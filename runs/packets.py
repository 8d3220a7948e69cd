"""Payload and output packets: stored as received (a string plus its type), decoded on read."""

from __future__ import annotations

import json
from typing import Any

from django.utils import timezone

from runs.models import Environment, Packet

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


# --- offloaded packets (application/store) -------------------------------------
# The SDK uploads payloads ≥ 128 KiB before triggering; the run then holds the
# packet's path. Packets live in the database (Packet rows), per environment.


def reserve_packet(environment: Environment, path: str) -> Packet:
    """The Packet row for `path`, created empty when new (the upload fills it)."""
    packet, _ = Packet.objects.get_or_create(environment=environment, path=path)
    return packet


def store_packet(
    environment: Environment, path: str, data: bytes, content_type: str
) -> None:
    """Write an upload; a second upload to the same path replaces the first."""
    Packet.objects.update_or_create(
        environment=environment,
        path=path,
        defaults={
            "data": data,
            "content_type": content_type or JSON,
            "uploaded_at": timezone.now(),
        },
    )


def is_uploaded(environment: Environment, path: str) -> bool:
    return Packet.objects.filter(
        environment=environment, path=path, uploaded_at__isnull=False
    ).exists()


def read_packet(environment: Environment, path: str) -> tuple[bytes, str] | None:
    """(data, content type) of an uploaded packet, or None."""
    row = (
        Packet.objects.filter(
            environment=environment, path=path, uploaded_at__isnull=False
        )
        .values_list("data", "content_type")
        .first()
    )
    if row is None:
        return None
    return bytes(row[0] or b""), row[1]
