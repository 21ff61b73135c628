"""The shared login bookkeeping: failure limiter and TTL cache on the injected clock, and the
hashes credentials were verified against."""

from __future__ import annotations

import asyncio

import pytest

from simgate.api.auth import (
    DUMMY_PASSWORD_HASH,
    FailureLimiter,
    NonceCounts,
    TtlCache,
    VerifiedHashes,
    address_key,
)
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
    assert len(lim._locked[("user", "1.2.3.4")]) == 3


def test_limiter_memory_is_bounded_under_many_keys() -> None:
    clock = FakeClock()
    lim: FailureLimiter[str] = FailureLimiter(clock, limit=2, window_s=60, max_keys=100)
    lim.fail("victim")  # one failure: still counting, not locked
    for i in range(10_000):
        lim.fail(f"k{i}")
        lim.blocked("victim")  # looking at a key does not keep it: failing does
    assert len(lim) == 100
    lim.fail("k9999")
    assert lim.blocked("k9999")
    lim.fail("victim")
    # pushed out: the price of the bound, one more try for a counting key (module
    # docstring); a locked key is never pushed out by new ones (test below)
    assert not lim.blocked("victim")


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


# ---- issue 14 item 2: tables that expire with their window and cost O(1) per event --------
def test_limiter_table_expires_with_its_window_without_being_looked_at() -> None:
    clock = FakeClock()
    lim: FailureLimiter[str] = FailureLimiter(clock, limit=5, window_s=60)
    for i in range(1000):
        lim.fail(f"flood{i}")
    assert len(lim) == 1000
    clock.set(clock.now_ms() + 60_000)
    lim.fail("next")  # any event sweeps what the window left behind
    assert len(lim) == 1
    clock.set(clock.now_ms() + 60_000)
    assert not lim.blocked("anyone")
    assert len(lim) == 0


def test_cache_table_expires_with_its_ttl_without_being_looked_at() -> None:
    clock = FakeClock()
    cache: TtlCache[str, int] = TtlCache(clock, ttl_s=5)
    for i in range(1000):
        cache.put(f"k{i}", i)
    clock.set(clock.now_ms() + 5_000)
    cache.put("new", 1)
    assert len(cache) == 1
    clock.set(clock.now_ms() + 5_000)
    assert cache.get("new") is None
    assert len(cache) == 0


# ---- issue 14 item 6: a flood of new names never frees a lock --------------------------------
def test_a_flood_of_new_keys_never_evicts_a_lock() -> None:
    clock = FakeClock()
    lim: FailureLimiter[str] = FailureLimiter(clock, limit=3, window_s=300, max_keys=100)
    for _ in range(3):
        lim.fail("victim")
    for i in range(10_000):
        lim.fail(f"junk{i}")
        assert len(lim) <= 101  # the bound holds: at most max_keys counting + the locks
    assert lim.blocked("victim")
    clock.set(clock.now_ms() + 300_000)
    assert not lim.blocked("victim")  # the lock ends with its window, not with a flood


def test_locks_beyond_the_bound_drop_the_oldest_and_warn(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    lim: FailureLimiter[str] = FailureLimiter(clock, limit=1, window_s=300, max_keys=10)
    with caplog.at_level("WARNING"):
        for i in range(11):
            lim.fail(f"k{i}")
    assert not lim.blocked("k0")
    assert all(lim.blocked(f"k{i}") for i in range(1, 11))
    assert len(lim) == 10
    assert any("locks" in r.getMessage() for r in caplog.records)


def test_limiter_alert_names_a_key_that_locks(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    lim: FailureLimiter[str] = FailureLimiter(clock, limit=2, window_s=60, alert="Api-Key")
    with caplog.at_level("WARNING"):
        lim.fail("k")
        assert not caplog.records
        lim.fail("k")
    (record,) = caplog.records
    assert "Api-Key" in record.getMessage()
    assert "'k'" in record.getMessage()


def test_ipv6_addresses_count_per_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("not an address") == "not an address"


def test_nonce_counts_refuse_replays_and_stay_bounded() -> None:
    clock = FakeClock()
    seen = NonceCounts(clock, ttl_s=300, max_nonces=100)
    now = clock.now_ms()
    assert seen.first_use("n0", now, 1)
    assert not seen.first_use("n0", now, 1)
    assert seen.first_use("n0", now, 3)
    assert seen.first_use("n0", now, 2)  # a little out of order is fine (concurrent requests)
    assert not seen.first_use("n0", now, 2)
    for i in range(1, 1000):
        assert seen.first_use(f"n{i}", now + i, 1)
        assert len(seen) <= 100
    # n0 was pushed out: it must not become usable again (its counts are forgotten)
    assert not seen.first_use("n0", now, 9)
    clock.set(now + 300_000 + 1000)
    assert seen.first_use("fresh", clock.now_ms(), 1)
    assert len(seen) == 1  # everything issued a window ago went


def test_nonce_counts_far_behind_the_highest_are_refused() -> None:
    clock = FakeClock()
    seen = NonceCounts(clock, ttl_s=300)
    now = clock.now_ms()
    assert seen.first_use("n", now, 1000)
    assert not seen.first_use("n", now, 1)  # older than the remembered window: maybe a replay
    assert seen.first_use("n", now, 999)


class Generation:
    """A hand-moved epoch (the shape :class:`simgate.services.cache_epoch.CacheEpoch` has)."""

    def __init__(self) -> None:
        self.value = 0
        self.looks = 0

    async def look_if_due(self) -> None:
        self.looks += 1


def test_cache_drops_everything_when_its_epoch_moves() -> None:
    epoch = Generation()
    cache: TtlCache[str, int] = TtlCache(FakeClock(), ttl_s=60, epoch=epoch)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    epoch.value += 1
    assert cache.get("b") is None
    assert len(cache) == 0
    cache.put("a", 3)
    assert cache.get("a") == 3


async def test_a_load_that_straddles_a_change_is_not_kept() -> None:
    """A value read before a change and returned after it must not outlive the change."""
    epoch = Generation()
    cache: TtlCache[str, int] = TtlCache(FakeClock(), ttl_s=60, epoch=epoch)
    loads: list[int] = []

    async def load() -> int:
        loads.append(epoch.value)
        epoch.value += 1  # the change commits while the old value is on its way
        return len(loads)

    assert await cache.get_or_load("a", load) == 1
    assert await cache.get_or_load("a", load) == 2
    assert loads == [0, 1]
    assert epoch.looks == 2  # each use of the cache gives the epoch a chance to look


def test_a_value_read_before_a_change_is_not_stored() -> None:
    """put(read_at=mark) for callers that read, verify and then store (Basic auth)."""
    epoch = Generation()
    cache: TtlCache[str, int] = TtlCache(FakeClock(), ttl_s=60, epoch=epoch)
    read_at = cache.mark()
    epoch.value += 1  # a change commits while the value is being checked
    cache.put("a", 1, read_at=read_at)
    assert cache.get("a") is None
    cache.put("a", 2, read_at=cache.mark())
    assert cache.get("a") == 2


async def test_concurrent_misses_share_one_load() -> None:
    """Issue 15: requests that miss while a key loads wait for that load, not a read each."""
    cache: TtlCache[str, int] = TtlCache(FakeClock(), ttl_s=60)
    gate = asyncio.Event()
    loads: list[str] = []

    async def load() -> int:
        loads.append("a")
        await gate.wait()
        return 7

    waiting = [asyncio.ensure_future(cache.get_or_load("a", load)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == [7] * 5
    assert loads == ["a"]
    assert cache.get("a") == 7


async def test_a_miss_after_a_change_does_not_join_a_load_from_before_it() -> None:
    epoch = Generation()
    cache: TtlCache[str, int] = TtlCache(FakeClock(), ttl_s=60, epoch=epoch)
    gates = [asyncio.Event(), asyncio.Event()]
    began = [asyncio.Event(), asyncio.Event()]
    loads: list[int] = []

    async def load() -> int:
        n = len(loads)
        loads.append(epoch.value)
        began[n].set()
        await gates[n].wait()
        return n + 1

    old = asyncio.ensure_future(cache.get_or_load("a", load))
    await began[0].wait()
    epoch.value += 1  # a change commits while the first read is on its way
    new = asyncio.ensure_future(cache.get_or_load("a", load))
    await began[1].wait()  # a read of its own, not the first one's answer
    for gate in gates:
        gate.set()
    assert (await old, await new) == (1, 2)
    assert loads == [0, 1]
    assert cache.get("a") == 2


async def test_a_shared_load_s_failure_reaches_every_waiter_and_is_not_kept() -> None:
    cache: TtlCache[str, int] = TtlCache(FakeClock(), ttl_s=60)
    gate = asyncio.Event()
    calls: list[str] = []

    async def broken() -> int:
        calls.append("broken")
        await gate.wait()
        raise OSError("database down")

    waiting = [asyncio.ensure_future(cache.get_or_load("a", broken)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
    assert calls == ["broken"]

    async def fine() -> int:
        return 1

    assert await cache.get_or_load("a", fine) == 1


def test_verified_hashes_match_only_the_hash_they_were_verified_against() -> None:
    seen: VerifiedHashes[str] = VerifiedHashes(max_entries=10)
    assert not seen.matches("k", "scrypt$aa$11")
    seen.remember("k", "scrypt$aa$11")
    assert seen.matches("k", "scrypt$aa$11")
    assert not seen.matches("other", "scrypt$aa$11")
    # The password changed (a new salt): no match, and the stale entry is gone for good.
    assert not seen.matches("k", "scrypt$bb$22")
    assert len(seen) == 0
    assert not seen.matches("k", "scrypt$aa$11")


def test_verified_hashes_are_a_bounded_lru() -> None:
    seen: VerifiedHashes[str] = VerifiedHashes(max_entries=2)
    seen.remember("a", "h")
    seen.remember("b", "h")
    assert seen.matches("a", "h")  # a use makes "a" the newest
    seen.remember("c", "h")
    assert len(seen) == 2
    assert not seen.matches("b", "h")  # the least recently used went
    assert seen.matches("a", "h")
    assert seen.matches("c", "h")
    with pytest.raises(ValueError):
        VerifiedHashes(max_entries=0)


async def test_verified_hashes_verify_checks_once_per_hash_and_always_for_unknown_users() -> None:
    checked: list[tuple[str, str]] = []

    def check(password: str, stored: str) -> bool:  # a named fake of the scrypt
        checked.append((password, stored))
        return stored == "h1" and password == "right"

    seen: VerifiedHashes[str] = VerifiedHashes(max_entries=10)
    assert not await seen.verify("k-wrong", "wrong", "h1", check)
    assert await seen.verify("k", "right", "h1", check)
    assert await seen.verify("k", "right", "h1", check)  # matched this hash before: no check
    assert checked == [("wrong", "h1"), ("right", "h1")]
    assert not await seen.verify("k", "right", "h2", check)  # a new hash: checked, refused
    # No such user: checked against the dummy hash (the same cost), never remembered.
    assert not await seen.verify("k-none", "right", None, check)
    assert checked[-1] == ("right", DUMMY_PASSWORD_HASH)
    assert len(seen) == 0
