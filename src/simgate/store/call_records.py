"""Reading call records: by id, and an account's DONE calls over a window (spec §1.14, §1.15).

``recordGroupQuery`` pages an account's DONE calls over up to 31 days of voiceIds. COUNT(*)
and OFFSET over such a window read every row of it (millions), so ``call_hours`` keeps the
number of DONE calls per account and voiceId hour, updated in the transaction that ends a call
(:meth:`CallRecordReader.count_hours`). The total is the sum of the whole hours inside the
window plus exact counts of the two edge hours; a page skips whole hours by their counts and
steps over rows only inside the one hour it starts in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Integer, func, literal, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.calls import CallKind, CallRecord, CallState
from simgate.domain.ids import issued_at_ms, lower_bound, upper_bound
from simgate.store.sqltext import chunks
from simgate.store.voice_tables import call_hours, calls

__all__ = ["HOUR_MS", "CallRecordReader", "hour_of"]

HOUR_MS = 3_600_000
DONE = int(CallState.DONE)

# A CallRecord's columns in field order, so a row converts positionally (as messages do).
_RECORD_COLUMNS = tuple(calls.c[name] for name in CallRecord.__slots__)
_KIND_AT = CallRecord.__slots__.index("kind")
_STATE_AT = CallRecord.__slots__.index("state")


def _record_of(row: Any) -> CallRecord:
    values = list(row)
    values[_KIND_AT] = CallKind(values[_KIND_AT])
    values[_STATE_AT] = CallState(values[_STATE_AT])
    return CallRecord(*values)


def hour_of(call_id: int) -> int | None:
    """The UTC hour (epoch ms // 3 600 000) a voiceId was issued in; None if it is no id."""
    if not 0 <= call_id < 10**19:
        return None
    try:
        return issued_at_ms(call_id) // HOUR_MS
    except ValueError:  # not a date (month 13, ...): not an id simgate issued
        return None


def _first_id(hour: int) -> int:
    return lower_bound(hour * HOUR_MS)


def _last_id(hour: int) -> int:
    return upper_bound(hour * HOUR_MS + HOUR_MS - 1)


class CallRecordReader:
    """The read side of :class:`simgate.store.calls.CallRepo`, and the hour counters."""

    async def count_hours(self, conn: AsyncConnection, done: Sequence[tuple[int, int]]) -> None:
        """Add calls that just became DONE to ``call_hours`` ((account_id, call_id) pairs)."""
        counts: Counter[tuple[int, int]] = Counter()
        for account_id, cid in done:
            hour = hour_of(cid)
            if hour is not None:
                counts[(account_id, hour)] += 1
        if not counts:
            return
        upsert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        stmt = upsert(call_hours)
        stmt = stmt.on_conflict_do_update(
            index_elements=[call_hours.c.account_id, call_hours.c.hour],
            set_={"n": call_hours.c.n + stmt.excluded.n},
        )
        # Sorted: concurrent finishers lock the counter rows in one order (no deadlock).
        await conn.execute(
            stmt, [{"account_id": a, "hour": h, "n": n} for (a, h), n in sorted(counts.items())]
        )

    async def get(self, conn: AsyncConnection, ids: Sequence[int]) -> list[CallRecord]:
        """The records of ``ids`` that exist, in id order."""
        out: list[CallRecord] = []
        for chunk in chunks(sorted(set(ids)), 500):
            rows = await conn.execute(select(*_RECORD_COLUMNS).where(calls.c.id.in_(chunk)))
            out.extend(_record_of(r) for r in rows)
        out.sort(key=lambda r: r.id)
        return out

    async def recent(
        self, conn: AsyncConnection, *, account_id: int | None, limit: int
    ) -> list[CallRecord]:
        """The newest calls in any state (operators' view: ``simgate calls list``)."""
        query = select(*_RECORD_COLUMNS).order_by(calls.c.id.desc()).limit(limit)
        if account_id is not None:
            query = query.where(calls.c.account_id == account_id)
        return [_record_of(r) for r in await conn.execute(query)]

    async def get_one(self, conn: AsyncConnection, call_id: int) -> CallRecord | None:
        row = (await conn.execute(select(*_RECORD_COLUMNS).where(calls.c.id == call_id))).first()
        return _record_of(row) if row is not None else None

    async def count_done(
        self, conn: AsyncConnection, *, account_id: int, id_from: int, id_to: int
    ) -> int:
        """DONE calls of the account with ``id_from <= id <= id_to`` (one round trip)."""
        if id_from > id_to:
            return 0
        h0, h1 = hour_of(id_from), hour_of(id_to)
        if h0 is None or h1 is None or h1 <= h0:
            q = select(_count(account_id, id_from, id_to))
        else:
            middle = (
                select(func.coalesce(func.sum(call_hours.c.n), 0))
                .where(
                    call_hours.c.account_id == account_id,
                    call_hours.c.hour > h0,
                    call_hours.c.hour < h1,
                )
                .scalar_subquery()
            )
            q = select(
                _count(account_id, id_from, _last_id(h0))
                + middle
                + _count(account_id, _first_id(h1), id_to)
            )
        return int((await conn.execute(q)).scalar_one())

    async def page_done(
        self,
        conn: AsyncConnection,
        *,
        account_id: int,
        id_from: int,
        id_to: int,
        offset: int,
        limit: int,
    ) -> list[CallRecord]:
        """DONE calls of the account in ascending id, ``id_from <= id <= id_to``, rows
        ``offset`` .. ``offset + limit - 1`` of that list (two round trips)."""
        if id_from > id_to or limit <= 0:
            return []
        offset = max(0, offset)
        h0, h1 = hour_of(id_from), hour_of(id_to)
        if h0 is None or h1 is None or h1 <= h0:
            return await self._page_from(conn, account_id, id_from, id_to, skip=offset, limit=limit)
        # The hour the page starts in, and how many rows come before that hour: the first
        # (partial) hour counted exactly, whole hours by call_hours, the last hour as a
        # sentinel that takes whatever is left.
        parts = union_all(
            select(
                literal(h0, Integer).label("hour"),
                _count(account_id, id_from, _last_id(h0)).label("n"),
            ),
            select(call_hours.c.hour, call_hours.c.n).where(
                call_hours.c.account_id == account_id,
                call_hours.c.hour > h0,
                call_hours.c.hour < h1,
            ),
            select(literal(h1, Integer), literal(_SENTINEL, BigInteger)),
        ).subquery("parts")
        upto = func.sum(parts.c.n).over(order_by=parts.c.hour)
        running = select(parts.c.hour, parts.c.n, upto.label("upto")).subquery("running")
        hit = (
            await conn.execute(
                select(running.c.hour, running.c.upto - running.c.n)
                .where(running.c.upto > offset)
                .order_by(running.c.hour)
                .limit(1)
            )
        ).one()
        hour, before = int(hit[0]), int(hit[1])
        lo = id_from if hour == h0 else _first_id(hour)
        return await self._page_from(conn, account_id, lo, id_to, skip=offset - before, limit=limit)

    async def _page_from(
        self, conn: AsyncConnection, account_id: int, lo: int, hi: int, *, skip: int, limit: int
    ) -> list[CallRecord]:
        """Rows ``skip`` .. of the range, in one statement: the skipped rows are stepped over
        in the index alone (a subquery reading ids only), the page's rows are read by key."""
        c = calls.c
        where = (c.account_id == account_id, c.state == DONE, c.id <= hi)
        start: Any = lo
        if skip:
            start = (
                select(c.id)
                .where(*where, c.id >= lo)
                .order_by(c.id)
                .offset(skip)
                .limit(1)
                .scalar_subquery()
            )
        rows = await conn.execute(
            select(*_RECORD_COLUMNS).where(*where, c.id >= start).order_by(c.id).limit(limit)
        )
        return [_record_of(r) for r in rows]


# More rows than any hour holds: the last part of the window "contains" every offset left.
_SENTINEL = 2**62


def _count(account_id: int, lo: int, hi: int) -> Any:
    """A scalar subquery: DONE calls of the account in ``lo <= id <= hi``."""
    return (
        select(func.count())
        .select_from(calls)
        .where(
            calls.c.account_id == account_id,
            calls.c.state == DONE,
            calls.c.id >= lo,
            calls.c.id <= hi,
        )
        .scalar_subquery()
    )
