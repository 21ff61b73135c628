"""Login bookkeeping every dialect shares: a failure limiter and a TTL cache.

Both read time from the injected :class:`~simgate.clock.Clock` (tests move it; nothing here
sleeps) and both hold a bounded number of keys, so a flood of new names (addresses, keys,
usernames) costs a fixed amount of memory. When full, the entry touched longest ago goes:
under such a flood an attacker can push out a record it wants gone, which is the price of
the bound (the old code cleared everything at once, which is worse).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from simgate.clock import Clock

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_MAX_KEYS = 10_000


class FailureLimiter(Generic[K]):
    """At most ``limit`` failures per key in any ``window_s`` seconds (a sliding window).

    Only the newest ``limit`` failure times of a key are kept: whether the limit is reached
    depends on the oldest of those alone, so older ones can never matter.
    """

    def __init__(
        self, clock: Clock, *, limit: int, window_s: float, max_keys: int = DEFAULT_MAX_KEYS
    ) -> None:
        if limit < 1 or max_keys < 1 or window_s <= 0:
            raise ValueError("limit and max_keys must be at least 1, window_s positive")
        self._clock = clock
        self._limit = limit
        self._window_ms = int(window_s * 1000)
        self._max_keys = max_keys
        self._seen: OrderedDict[K, deque[int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def _recent(self, key: K, now: int) -> deque[int] | None:
        times = self._seen.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self._window_ms:
            times.popleft()
        if not times:
            del self._seen[key]
            return None
        return times

    def blocked(self, key: K) -> bool:
        times = self._recent(key, self._clock.now_ms())
        return times is not None and len(times) >= self._limit

    def fail(self, key: K) -> None:
        now = self._clock.now_ms()
        times = self._recent(key, now)
        if times is None:
            times = self._seen[key] = deque(maxlen=self._limit)
        self._seen.move_to_end(key)
        times.append(now)
        while len(self._seen) > self._max_keys:
            self._seen.popitem(last=False)

    def forget(self, key: K) -> None:
        self._seen.pop(key, None)


class TtlCache(Generic[K, V]):
    """Values remembered for ``ttl_s`` seconds after they were stored; ``ttl_s`` 0 = never.

    A stored value may be ``None`` (e.g. "no such key"): :meth:`get_or_load` caches that too.
    """

    def __init__(self, clock: Clock, *, ttl_s: float, max_entries: int = DEFAULT_MAX_KEYS) -> None:
        if ttl_s < 0 or max_entries < 1:
            raise ValueError("ttl_s must not be negative, max_entries at least 1")
        self._clock = clock
        self._ttl_ms = int(ttl_s * 1000)
        self._max = max_entries
        self._entries: OrderedDict[K, tuple[int, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _hit(self, key: K) -> tuple[int, V] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock.now_ms():
            del self._entries[key]
            return None
        return entry

    def get(self, key: K) -> V | None:
        """The live value, or None when absent or expired."""
        entry = self._hit(key)
        return None if entry is None else entry[1]

    def put(self, key: K, value: V) -> None:
        if self._ttl_ms <= 0:
            return
        self._entries[key] = (self._clock.now_ms() + self._ttl_ms, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The live value, else ``await load()`` stored and returned (errors are not cached)."""
        entry = self._hit(key)
        if entry is not None:
            return entry[1]
        value = await load()
        self.put(key, value)
        return value
