"""A value read at most once a poll interval, and at once when a counter moves (issue 15).

The worker's caches of what its writers owe rows for (services/push_interest.py: the push
formats' interest, with the account service's epoch; services/smpp_interest.py: the
accounts with SMPP accounts, with store/smpp_users.py's generation) share one bound:

- the value is read again when the last read is ``poll_ms`` old, by the first :meth:`get`
  that finds it so (a change made by another process is seen ``poll_ms`` after it
  committed at most); nothing reads meanwhile, and an idle caller reads nothing;
- a change made in this process moves the counter after it committed: the next
  :meth:`get` reads again, whatever the time;
- the counter and the time are taken before the read: a change committed while the read
  runs moved the counter (or is within the interval) and makes the next :meth:`get` read
  again, as a read that straddles a move of the counter may have missed it;
- a clock that went back (the last read seems to lie in the future) reads again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from simgate.clock import Clock

C = TypeVar("C")
T = TypeVar("T")


class PolledCache(Generic[C, T]):
    """The answer of ``read(conn)``, read again per the module's bound; ``counter``: a number
    that moves when this process changed what ``read`` reads."""

    __slots__ = ("_clock", "_counter", "_poll_ms", "_read", "_read_counter", "_read_ms", "_value")

    def __init__(
        self,
        read: Callable[[C], Awaitable[T]],
        *,
        clock: Clock,
        counter: Callable[[], int],
        poll_ms: int,
    ) -> None:
        self._read = read
        self._clock = clock
        self._counter = counter
        self._poll_ms = poll_ms
        self._value: tuple[T] | None = None  # boxed: a read may answer None
        self._read_ms = 0
        self._read_counter = 0

    async def get(self, conn: C) -> T:
        """The cached answer, or a fresh one read with ``conn`` when it is due."""
        value = self._value
        if value is not None:
            age = self._clock.now_ms() - self._read_ms
            if 0 <= age < self._poll_ms and self._counter() == self._read_counter:
                return value[0]
        counter, now = self._counter(), self._clock.now_ms()
        fresh = await self._read(conn)
        self._value, self._read_ms, self._read_counter = (fresh,), now, counter
        return fresh
