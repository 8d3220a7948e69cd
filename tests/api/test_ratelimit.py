"""Token buckets: refill, and one shared bucket across processes through Redis."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from runs.api.ratelimit import MemoryBuckets, RedisBuckets, bucket_key
from tests.api.conftest import needs_redis


def test_memory_bucket_empties_and_refills():
    buckets = MemoryBuckets()
    decisions = [buckets.take("k", capacity=3, rate=50) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    now_ms = time.time() * 1000
    assert now_ms < decisions[-1].reset_ms <= now_ms + 40  # next token in ~20 ms
    time.sleep(0.05)
    assert buckets.take("k", capacity=3, rate=50).allowed
    assert buckets.take("other", capacity=3, rate=50).remaining == 2


def test_keys_are_hashed_and_anonymous_callers_count_per_address():
    assert "tr_dev" not in bucket_key("Bearer tr_dev_secret", "1.2.3.4")
    assert bucket_key("", "1.2.3.4") != bucket_key("", "5.6.7.8")
    assert bucket_key("Bearer a", "1.2.3.4") == bucket_key("Bearer a", "5.6.7.8")


@needs_redis
def test_redis_bucket_is_shared_by_every_process():
    # Two clients stand for two server processes: they drain one bucket.
    first, second = RedisBuckets(settings.REDIS_URL), RedisBuckets(settings.REDIS_URL)
    key = f"test-{time.time_ns()}"
    results = [
        (first if i % 2 else second).take(key, capacity=4, rate=0.01).allowed
        for i in range(6)
    ]
    assert results == [True, True, True, True, False, False]
    limited = first.take(key, capacity=4, rate=0.01)
    assert limited.remaining == 0 and limited.reset_ms > time.time() * 1000 + 50_000


def _redis_tokens(key: str) -> float:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    return float(client.hget(f"runwatch:ratelimit:{key}", "tokens"))


@needs_redis
@pytest.mark.parametrize("pattern", ["alternating", "first-then-second"])
def test_leased_tokens_never_exceed_the_bucket_across_processes(pattern):
    # 300 tokens, leases of 3: the processes mostly skip Redis, yet together they
    # admit no more than the bucket holds, and leave none of it unused.
    first, second = RedisBuckets(settings.REDIS_URL), RedisBuckets(settings.REDIS_URL)
    key = f"test-{time.time_ns()}"
    if pattern == "alternating":
        order = [first, second] * 200
    else:  # the first takes a lease and goes quiet; the second drains the bucket
        order = [first] + [second] * 399
    allowed = [p.take(key, capacity=300, rate=0.001).allowed for p in order]
    assert sum(allowed) == 300 - (2 if pattern == "first-then-second" else 0)
    assert not any(allowed[-80:])
    if pattern == "first-then-second":  # its two leased tokens are still its own
        assert first.take(key, capacity=300, rate=0.001).allowed
        assert first.take(key, capacity=300, rate=0.001).allowed
        assert not first.take(key, capacity=300, rate=0.001).allowed


@needs_redis
def test_a_lease_counts_locally_and_gives_back_what_it_did_not_use(monkeypatch):
    from runs.api import ratelimit

    buckets = RedisBuckets(settings.REDIS_URL)
    key = f"test-{time.time_ns()}"
    decisions = [buckets.take(key, capacity=1000, rate=0.001) for _ in range(4)]
    assert [d.remaining for d in decisions] == [999, 998, 997, 996]
    assert _redis_tokens(key) == pytest.approx(990, abs=0.01)  # one lease of 10
    monkeypatch.setattr(ratelimit, "LEASE_SECONDS", 0)  # the lease expires
    assert buckets.take(key, capacity=1000, rate=0.001).remaining == 995
    # the 6 unused tokens went back, a new lease of 10 came out
    assert _redis_tokens(key) == pytest.approx(990 + 6 - 10, abs=0.01)


def test_an_unreachable_limiter_lets_requests_through(monkeypatch, settings):
    from runs.api import ratelimit

    class Down:
        def take(self, *args):
            raise ConnectionError("redis is down")

    settings.RUNWATCH_API_RATE_LIMIT = 5
    monkeypatch.setattr(ratelimit, "_buckets", Down())
    assert ratelimit.take("k") is None


def test_limit_zero_turns_rate_limiting_off(settings):
    from runs.api import ratelimit

    settings.RUNWATCH_API_RATE_LIMIT = 0
    assert ratelimit.take("k") is None
