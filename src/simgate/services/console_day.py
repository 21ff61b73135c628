"""The overview's last-day chart without reading the whole day on every request.

A day is 144 buckets of 10 minutes; over 10 M messages in 89 days that is ~110 000 rows, too
many to read per page view within the 100 ms the issue asks (bench/console.py). The messages
of a bucket older than an hour have mostly settled (sent, and their receipt back), so such a
bucket is read once and kept for ``REFRESH_MS``; each request re-reads at most
``REFRESH_PER_REQUEST`` buckets past that, newest first, so a late receipt reaches the chart
after ``REFRESH_MS`` and a few more requests (the htmx refresh makes one every 10 s), and no
request pays for more than a few buckets. The last hour is
always read fresh. The first request after start (or for a new account) reads the whole day.
"""

from __future__ import annotations

from collections import OrderedDict

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain import ids
from simgate.store import console_queries as q
from simgate.store.console_queries import Buckets

BUCKET_MS = 10 * 60_000
BUCKETS = 144
FRESH_BUCKETS = 7  # the last hour and the bucket in progress: always read
REFRESH_MS = 15 * 60_000
REFRESH_PER_REQUEST = 3
MAX_SCOPES = 1000  # accounts whose day is kept; the least recently viewed goes first

Counts = tuple[int, int, int, int]


def day_start(now_ms: int) -> int:
    return now_ms - now_ms % BUCKET_MS - (BUCKETS - 1) * BUCKET_MS


def fresh_from(now_ms: int) -> int:
    """Where the always-read part of the day begins (a bucket boundary, 60..70 minutes ago)."""
    return day_start(now_ms) + (BUCKETS - FRESH_BUCKETS) * BUCKET_MS


def _by_ten(minutes: Buckets) -> Buckets:
    per = BUCKET_MS // 60_000

    def fold(values: list[int]) -> list[int]:
        return [sum(values[i : i + per]) for i in range(0, per * FRESH_BUCKETS, per)]

    return Buckets(
        fold(minutes.accepted), fold(minutes.sent), fold(minutes.delivered), fold(minutes.failed)
    )


class DayChart:
    def __init__(self) -> None:
        # scope -> bucket start -> (read at, counts)
        self._kept: OrderedDict[int | None, dict[int, tuple[int, Counts]]] = OrderedDict()

    async def read(
        self, conn: AsyncConnection, *, scope: int | None, now_ms: int, fresh_minutes: Buckets
    ) -> tuple[int, Buckets]:
        """The day's start and its buckets for ``scope`` (None: every account).

        ``fresh_minutes``: the caller's per-minute buckets from :func:`fresh_from` on (the
        overview reads them once for its hour chart and this chart's fresh part)."""
        start = day_start(now_ms)
        settled_until = fresh_from(now_ms)
        kept = self._kept.pop(scope, {})
        self._kept[scope] = kept
        while len(self._kept) > MAX_SCOPES:
            self._kept.popitem(last=False)
        for old in [b for b in kept if b < start]:
            del kept[old]
        refreshed = 0
        # Newest first: late receipts mostly land in the buckets just past the fresh hour.
        for b in range(settled_until - BUCKET_MS, start - 1, -BUCKET_MS):
            entry = kept.get(b)
            stale = entry is not None and now_ms - entry[0] > REFRESH_MS
            if entry is None or (stale and refreshed < REFRESH_PER_REQUEST):
                refreshed += stale
                kept[b] = (now_ms, await self._bucket(conn, scope, b))
        fresh = _by_ten(fresh_minutes)
        out = Buckets([], [], [], [])
        for b in range(start, settled_until, BUCKET_MS):
            a, s, d, f = kept[b][1]
            out.accepted.append(a)
            out.sent.append(s)
            out.delivered.append(d)
            out.failed.append(f)
        out.accepted.extend(fresh.accepted)
        out.sent.extend(fresh.sent)
        out.delivered.extend(fresh.delivered)
        out.failed.extend(fresh.failed)
        return start, out

    @staticmethod
    async def _bucket(conn: AsyncConnection, scope: int | None, start: int) -> Counts:
        one = await q.traffic(
            conn,
            account_id=scope,
            id_from=ids.lower_bound(start),
            id_to=ids.upper_bound(start + BUCKET_MS - 1),
            start_ms=start,
            bucket_ms=BUCKET_MS,
            buckets=1,
        )
        return one.accepted[0], one.sent[0], one.delivered[0], one.failed[0]
