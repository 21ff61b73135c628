"""The polled cache's bound (services/polled_cache.py) on a fake clock, behaviour by behaviour;
its users on the real store: tests/services/test_smpp_interest.py, test_push_interest.py."""

from __future__ import annotations

import asyncio

from simgate.services.polled_cache import PolledCache
from simgate.testing.clock import FakeClock

POLL_MS = 1_000


class Source:
    """What the cache reads: a value, a counter this process moves after a change, and the
    reads made so far (``during_read``: what happens while a read runs)."""

    def __init__(self) -> None:
        self.value = "v0"
        self.counter = 0
        self.reads = 0
        self.during_read: list[str] = []

    async def read(self, conn: str) -> str:
        assert conn == "conn"  # the caller's connection, handed on
        self.reads += 1
        if self.during_read:
            self.value = self.during_read.pop()
            self.counter += 1
        return self.value


def _cache(source: Source, clock: FakeClock) -> PolledCache[str, str]:
    return PolledCache(source.read, clock=clock, counter=lambda: source.counter, poll_ms=POLL_MS)


async def test_the_first_get_reads() -> None:
    source = Source()
    assert await _cache(source, FakeClock()).get("conn") == "v0"
    assert source.reads == 1


async def test_within_the_poll_nothing_is_read_even_if_the_value_changed_elsewhere() -> None:
    source, clock = Source(), FakeClock()
    cache = _cache(source, clock)
    await cache.get("conn")
    source.value = "v1"  # another process's change: the counter does not move here
    await clock.advance((POLL_MS - 1) / 1000)
    assert await cache.get("conn") == "v0"
    assert source.reads == 1


async def test_a_poll_after_the_last_read_the_next_get_reads_again() -> None:
    source, clock = Source(), FakeClock()
    cache = _cache(source, clock)
    await cache.get("conn")
    source.value = "v1"
    await clock.advance(POLL_MS / 1000)
    assert await cache.get("conn") == "v1"
    assert await cache.get("conn") == "v1"
    assert source.reads == 2  # and then the poll starts over


async def test_a_moved_counter_reads_again_at_once() -> None:
    source, clock = Source(), FakeClock()
    cache = _cache(source, clock)
    await cache.get("conn")
    source.value, source.counter = "v1", 1  # a change in this process
    assert await cache.get("conn") == "v1"
    assert source.reads == 2


async def test_a_read_that_straddles_a_move_of_the_counter_is_not_trusted() -> None:
    source, clock = Source(), FakeClock()
    cache = _cache(source, clock)
    source.during_read.append("v1")  # a change commits while the first read runs
    await cache.get("conn")
    assert await cache.get("conn") == "v1"  # no time passed: read again all the same
    assert source.reads == 2
    assert await cache.get("conn") == "v1"
    assert source.reads == 2


async def test_the_poll_counts_from_before_the_read() -> None:
    """A slow read does not lengthen the bound: the time is taken before it."""
    source, clock = Source(), FakeClock()
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(conn: str) -> str:
        started.set()
        await release.wait()
        return await source.read(conn)

    cache: PolledCache[str, str] = PolledCache(
        slow, clock=clock, counter=lambda: source.counter, poll_ms=POLL_MS
    )
    first = asyncio.ensure_future(cache.get("conn"))
    await started.wait()
    await clock.advance((POLL_MS - 1) / 1000)  # the read takes almost a poll
    release.set()
    await first
    await clock.advance(1 / 1000)
    await cache.get("conn")
    assert source.reads == 2


async def test_a_clock_gone_back_reads_again() -> None:
    source, clock = Source(), FakeClock()
    cache = _cache(source, clock)
    await cache.get("conn")
    clock.set(clock.now_ms() - 1)
    await cache.get("conn")
    assert source.reads == 2


async def test_a_read_may_answer_none_and_it_is_kept() -> None:
    reads = 0

    async def nothing(conn: str) -> str | None:
        nonlocal reads
        reads += 1
        return None  # e.g. no row

    cache: PolledCache[str, str | None] = PolledCache(
        nothing, clock=FakeClock(), counter=lambda: 0, poll_ms=POLL_MS
    )
    assert await cache.get("conn") is None
    assert await cache.get("conn") is None
    assert reads == 1
