"""The shared login bookkeeping: failure limiter and TTL cache on the injected clock."""

from __future__ import annotations

import pytest

from simgate.api.auth import FailureLimiter, TtlCache
from simgate.testing.clock import FakeClock


def test_limiter_blocks_at_the_limit_within_the_window() -> None:
    clock = FakeClock()
    lim: FailureLimiter[str] = FailureLimiter(clock, limit=3, window_s=60)
    for _ in range(2):
        lim.fail("a")
    assert not lim.blocked("a")
    lim.fail("a")
    assert lim.blocked("a")
    assert not lim.blocked("b")


def test_limiter_window_slides() -> None:
    clock = FakeClock()
    lim: FailureLimiter[str] = FailureLimiter(clock, limit=2, window_s=60)
    lim.fail("a")
    clock.set(clock.now_ms() + 40_000)
    lim.fail("a")
    assert lim.blocked("a")
    clock.set(clock.now_ms() + 20_000)  # the first failure is exactly one window old
    assert not lim.blocked("a")
    lim.fail("a")
    assert lim.blocked("a")
    clock.set(clock.now_ms() + 60_000)
    assert not lim.blocked("a")
    assert len(lim) == 0  # expired keys are dropped when looked at


def test_limiter_keeps_only_limit_times_per_key() -> None:
    clock = FakeClock()
    lim: FailureLimiter[tuple[str, str]] = FailureLimiter(clock, limit=3, window_s=10)
    for _ in range(10_000):
        lim.fail(("user", "1.2.3.4"))
    assert lim.blocked(("user", "1.2.3.4"))
    assert len(lim._seen[("user", "1.2.3.4")]) == 3


def test_limiter_memory_is_bounded_under_many_keys() -> None:
    clock = FakeClock()
    lim: FailureLimiter[str] = FailureLimiter(clock, limit=2, window_s=60, max_keys=100)
    lim.fail("victim")
    lim.fail("victim")
    for i in range(10_000):
        lim.fail(f"k{i}")
        lim.blocked("victim")  # looking at a key does not keep it: failing does
    assert len(lim) == 100
    lim.fail("k9999")
    assert lim.blocked("k9999")
    assert not lim.blocked("victim")  # pushed out: the price of the bound (module docstring)


def test_limiter_forget() -> None:
    clock = FakeClock()
    lim: FailureLimiter[str] = FailureLimiter(clock, limit=1, window_s=60)
    lim.fail("a")
    lim.forget("a")
    lim.forget("never")
    assert not lim.blocked("a")


def test_limiter_refuses_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        FailureLimiter(FakeClock(), limit=0, window_s=1)


def test_cache_expires_on_the_clock() -> None:
    clock = FakeClock()
    cache: TtlCache[str, int] = TtlCache(clock, ttl_s=2)
    cache.put("a", 1)
    assert cache.get("a") == 1
    clock.set(clock.now_ms() + 1999)
    assert cache.get("a") == 1
    clock.set(clock.now_ms() + 1)
    assert cache.get("a") is None
    assert len(cache) == 0


def test_cache_with_zero_ttl_keeps_nothing() -> None:
    cache: TtlCache[str, int] = TtlCache(FakeClock(), ttl_s=0)
    cache.put("a", 1)
    assert cache.get("a") is None


async def test_get_or_load_caches_none_and_not_errors() -> None:
    clock = FakeClock()
    cache: TtlCache[str, int | None] = TtlCache(clock, ttl_s=1)
    calls: list[str] = []

    async def missing() -> int | None:
        calls.append("missing")
        return None

    async def broken() -> int | None:
        calls.append("broken")
        raise OSError("database down")

    assert await cache.get_or_load("x", missing) is None
    assert await cache.get_or_load("x", missing) is None
    assert calls == ["missing"]
    for _ in range(2):
        with pytest.raises(OSError):
            await cache.get_or_load("y", broken)
    assert calls == ["missing", "broken", "broken"]
    clock.set(clock.now_ms() + 1000)
    assert await cache.get_or_load("x", missing) is None
    assert calls == ["missing", "broken", "broken", "missing"]


def test_cache_memory_is_bounded_under_many_keys() -> None:
    cache: TtlCache[str, int] = TtlCache(FakeClock(), ttl_s=60, max_entries=50)
    for i in range(10_000):
        cache.put(f"k{i}", i)
    assert len(cache) == 50
    assert cache.get("k9999") == 9999
    assert cache.get("k0") is None


def test_cache_refuses_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        TtlCache(FakeClock(), ttl_s=-1)
