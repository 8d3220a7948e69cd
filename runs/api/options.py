"""Trigger options and payloads as the API receives them → `TriggerOptions`.

Payloads arrive as a JSON value (`application/json`, what curl sends), or as a
string already serialized in `payloadType`: superjson (`application/super+json`,
what the SDK sends), `text/plain`, or a packet's storage path
(`application/store`, the SDK's offload of payloads ≥ 128 KiB). They are stored
as received, with their type, and decoded when presented.
"""

from __future__ import annotations

import json
from typing import Any

from runs import packets
from runs.api.errors import ApiError
from runs.models import Environment
from runs.triggering import TriggerOptions


def raw_payload(environment: Environment, payload: Any, payload_type: str) -> str:
    """The payload packet to store, checked against its type."""
    if payload_type == packets.JSON:
        if payload is None:
            return ""
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    if payload is None:
        payload = ""
    if not isinstance(payload, str):
        raise ApiError(
            400, f"payload must be a string when options.payloadType is {payload_type}"
        )
    if payload_type == packets.STORE:
        if not payload:
            raise ApiError(
                400,
                "payload must be a non-empty string when options.payloadType is application/store",
            )
        if not packets.is_uploaded(environment, payload):
            raise ApiError(422, f"Packet {payload} has not been uploaded")
    elif payload_type == packets.SUPERJSON and payload:
        try:
            json.loads(payload)
        except ValueError:
            raise ApiError(400, "payload is not valid superjson") from None
    return payload


def trigger_options(
    options: dict[str, Any], *, headers: dict[str, str] | None = None
) -> TriggerOptions:
    """Map validated API `options` (camelCase) onto the service's TriggerOptions."""
    headers = headers or {}
    key = options.get("idempotencyKey") or headers.get("idempotency-key") or None
    key_options = options.get("idempotencyKeyOptions") or {}
    concurrency_key = options.get("concurrencyKey")
    return TriggerOptions(
        payload_type=options.get("payloadType") or packets.JSON,
        queue=(options.get("queue") or {}).get("name", ""),
        concurrency_key=None if concurrency_key is None else str(concurrency_key),
        delay=options.get("delay"),
        ttl=options.get("ttl"),
        idempotency_key=key,
        idempotency_key_user=key_options.get("key") or key,
        idempotency_key_ttl=options.get("idempotencyKeyTTL")
        or headers.get("idempotency-key-ttl"),
        machine=options.get("machine") or "",
        max_attempts=_int_or_none(options.get("maxAttempts")),
        max_duration=_int_or_none(options.get("maxDuration")),
        metadata=options.get("metadata"),
        tags=options.get("tags"),
        test=bool(options.get("test", False)),
        priority=options.get("priority") or 0,
        lock_to_version=options.get("lockToVersion") or "",
        parent_run_id=options.get("parentRunId") or None,
        resume_parent_on_completion=bool(options.get("resumeParentOnCompletion")),
    )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
