"""Message ids: ``yyMMddHHmmss`` + a 7-digit sequence = 19 digits (spec §7, §1.3).

The timestamp part is UTC. The sequence comes from blocks reserved in the database
(``id_blocks``), so two processes never hand out the same sequence; within one process it
counts up. Uniqueness therefore only needs "no two ids share a second and a sequence", which
holds until 10 000 000 ids are issued in one second. Ids stay below 2**63 through 2092, so they
fit a BIGINT primary key and sort by time, which is what lets time-slot queries use the key.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

SEQ_DIGITS = 7
SEQ_MOD = 10_000_000  # 10**SEQ_DIGITS
MAX_ID = 2**63 - 1  # BIGINT: a larger number given as an id is no id of ours
EARLIEST_MS = 946_684_800_000  # 2000-01-01 00:00:00 UTC: the two-digit year starts here
LATEST_MS = 3_881_606_399_999  # 2092-12-31 23:59:59.999 UTC: later ids pass 2**63 (93...)


@functools.lru_cache(maxsize=4)
def _stamp(second: int) -> int:
    return int(datetime.fromtimestamp(second, tz=UTC).strftime("%y%m%d%H%M%S"))


def compose(now_ms: int, seq: int) -> int:
    return _stamp(now_ms // 1000) * SEQ_MOD + (seq % SEQ_MOD)


def in_range(ms: int) -> bool:
    """Whether ids can be issued at ``ms`` (a two-digit year, and a BIGINT)."""
    return EARLIEST_MS <= ms <= LATEST_MS


def lower_bound(ms: int) -> int:
    """Smallest id that could have been issued at or after ``ms`` (for key-range scans).

    Outside the years ids can carry it still bounds them and still fits a BIGINT (a client's
    time in 2093 or 1999 would otherwise wrap the two-digit year or overflow the column).
    """
    if ms > LATEST_MS:
        return MAX_ID
    ms = max(ms, EARLIEST_MS)
    return compose(ms - ms % 1000, 0)


def upper_bound(ms: int) -> int:
    """Largest id that could have been issued at or before ``ms`` (clamped like lower_bound)."""
    if ms < EARLIEST_MS:
        return 0
    ms = min(ms, LATEST_MS)
    return compose(ms - ms % 1000, SEQ_MOD - 1)


def issued_at_ms(msg_id: int) -> int:
    stamp = str(msg_id // SEQ_MOD).zfill(12)
    # Not strptime("%y"): it maps 69..99 to 1969..1999, and ids are issued from 2000 on.
    y, mo, d, h, mi, s = (int(stamp[i : i + 2]) for i in range(0, 12, 2))
    dt = datetime(2000 + y, mo, d, h, mi, s, tzinfo=UTC)
    return int(dt.timestamp() * 1000)


class IdAllocator:
    """Hands out ids from a reserved block; ``refill`` is given the next block start."""

    def __init__(self) -> None:
        self._next = 0
        self._end = 0

    def remaining(self) -> int:
        return self._end - self._next

    def refill(self, start: int, size: int) -> None:
        self._next, self._end = start, start + size

    def take(self, now_ms: int) -> int:
        if self._next >= self._end:
            raise LookupError("id block exhausted")
        seq = self._next
        self._next += 1
        return compose(now_ms, seq)
