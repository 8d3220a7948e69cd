"""Per-key token buckets: `RUNWATCH_API_RATE_LIMIT` tokens, refilled at
`RUNWATCH_API_RATE_REFILL_PER_SECOND`; every API request takes one.

With `REDIS_URL` set the bucket lives in Redis (one Lua script, Redis' own clock), so
the limit holds across every server process; each process takes tokens from it in
small leases (`RedisBuckets`), so most requests need no Redis round trip. Without
`REDIS_URL` the bucket is in process memory. If
Redis cannot be reached the request is let through (and logged): an outage of the
limiter must not take the API down.

Answers carry `x-ratelimit-limit`, `x-ratelimit-remaining` and `x-ratelimit-reset`
(unix milliseconds: when the bucket is full again, or for a 429, when the next
token arrives, which is when the SDK retries).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.http import JsonResponse

logger = logging.getLogger("runwatch.api")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_ms: int

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset_ms),
        }

    def response(self) -> JsonResponse:
        retry_after = max(1, math.ceil(self.reset_ms / 1000 - time.time()))
        response = JsonResponse(
            {
                "title": "Rate Limit Exceeded",
                "status": 429,
                "type": "https://httpstatuses.com/429",
                "detail": f"Rate limit exceeded {self.remaining}/{self.limit} requests remaining. "
                f"Retry in {retry_after} seconds.",
                "reset": self.reset_ms,
                "limit": self.limit,
                "remaining": self.remaining,
                "error": "Rate limit exceeded",
            },
            status=429,
            content_type="application/problem+json",
        )
        response["Retry-After"] = str(retry_after)
        for name, value in self.headers().items():
            response[name] = value
        return response


def _decide(
    tokens: float, allowed: bool, capacity: int, rate: float, now_ms: float
) -> Decision:
    if allowed:
        reset = now_ms + (capacity - tokens) / rate * 1000
    else:
        reset = now_ms + (1 - tokens) / rate * 1000
    return Decision(allowed, capacity, int(tokens), math.ceil(reset))


class MemoryBuckets:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, capacity: int, rate: float) -> Decision:
        now = time.time() * 1000
        with self._lock:
            tokens, stamp = self._buckets.get(key, (float(capacity), now))
            tokens = min(capacity, tokens + (now - stamp) / 1000 * rate)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 100_000:  # forget idle keys (full buckets)
                self._buckets = {
                    k: v for k, v in self._buckets.items() if v[0] < capacity
                }
        return _decide(tokens, allowed, capacity, rate, now)


# KEYS[1] bucket; ARGV capacity, refill per second, tokens wanted, tokens given back
# (the unused rest of an expired lease), reserve. Grants `wanted` tokens while at
# least `reserve` would remain, otherwise one (or none when the bucket is empty).
# Returns {granted, tokens left, now_ms} on Redis' clock.
_LEASE_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local refund = tonumber(ARGV[4])
local reserve = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1]) or capacity
local ts = tonumber(data[2]) or now
tokens = math.min(capacity, tokens + (now - ts) / 1000 * rate + refund)
local granted = 0
if tokens >= 1 then
  granted = 1
  if wanted > 1 and tokens - wanted >= reserve then
    granted = wanted
  end
  tokens = tokens - granted
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return {granted, tostring(tokens), tostring(now)}
"""

LEASE_MAX = 20  # tokens a process takes from Redis at once, at most
LEASE_SECONDS = 1.0  # after this a lease's unused tokens go back to Redis


def lease_size(capacity: int) -> int:
    """1 % of the bucket (at most LEASE_MAX): small buckets are counted one by one."""
    return max(1, min(LEASE_MAX, capacity // 100))


@dataclass
class _Lease:
    left: int  # tokens this process may still hand out without asking Redis
    bucket: float  # what Redis held after granting the lease
    now_ms: float  # Redis' clock then
    taken: float  # time.monotonic() then

    def decision(self, capacity: int, rate: float) -> Decision:
        now_ms = self.now_ms + (time.monotonic() - self.taken) * 1000
        return _decide(self.bucket + self.left, True, capacity, rate, now_ms)


class RedisBuckets:
    """Buckets in Redis, shared by every process. A process takes tokens in leases
    (`lease_size`) and hands them out locally, so most requests cost no Redis round
    trip; the limit still holds across processes, as every token handed out was
    taken from Redis first. The last 10 % of a bucket is taken one token at a time,
    so that no process sits on tokens that another's requests need while the bucket
    runs dry; a lease's unused tokens go back after LEASE_SECONDS, with the process'
    next call for that key. (A bucket refilled to the brim while leases are out may
    admit those few leased tokens on top: at most `lease_size` per process.)"""

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=1)
        self._script = self._client.register_script(_LEASE_SCRIPT)
        self._leases: dict[tuple[str, int, float], _Lease] = {}
        self._lock = threading.Lock()

    def take(self, key: str, capacity: int, rate: float) -> Decision:
        slot = (key, capacity, rate)
        with self._lock:
            lease = self._leases.get(slot)
            if lease is not None:
                if lease.left > 0 and time.monotonic() - lease.taken < LEASE_SECONDS:
                    lease.left -= 1
                    return lease.decision(capacity, rate)
                del self._leases[slot]
        refund = lease.left if lease is not None else 0
        granted, tokens, now = self._script(
            keys=[f"runwatch:ratelimit:{key}"],
            args=[capacity, rate, lease_size(capacity), refund, capacity // 10],
        )
        granted, tokens, now = int(granted), float(tokens), float(now)
        if not granted:
            return _decide(tokens, False, capacity, rate, now)
        fresh = _Lease(granted - 1, tokens, now, time.monotonic())
        with self._lock:
            held = self._leases.get(slot)
            if held is None:
                self._leases[slot] = held = fresh
            else:  # another thread leased meanwhile: pool the tokens
                held.left += fresh.left
                held.bucket = min(held.bucket, fresh.bucket)
            if len(self._leases) > 100_000:  # forget idle keys' leases
                self._leases = {slot: held}
            return held.decision(capacity, rate)


_buckets: MemoryBuckets | RedisBuckets | None = None
_buckets_lock = threading.Lock()


def buckets() -> MemoryBuckets | RedisBuckets:
    global _buckets
    with _buckets_lock:
        if _buckets is None:
            _buckets = (
                RedisBuckets(settings.REDIS_URL)
                if settings.REDIS_URL
                else MemoryBuckets()
            )
        return _buckets


def bucket_key(authorization: str, remote_addr: str) -> str:
    """Requests are counted per Authorization value (hashed), anonymous ones per address."""
    material = authorization or f"anonymous:{remote_addr}"
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def take(key: str) -> Decision | None:
    """One token from `key`'s bucket; None when rate limiting is switched off (limit 0)."""
    capacity = settings.RUNWATCH_API_RATE_LIMIT
    if capacity <= 0:
        return None
    rate = max(settings.RUNWATCH_API_RATE_REFILL_PER_SECOND, 0.001)
    try:
        return buckets().take(key, capacity, rate)
    except Exception:  # Redis unreachable: let the request through
        logger.warning("rate limiter unavailable, request not counted", exc_info=True)
        return None
