"""Delivery reports: part reports, report tallies, and orphans that overtook their submit.

Row operations only: which reports settle which message, and when, is the messaging
service's decision (:mod:`simgate.services.messaging`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.messages import STATE_TIME_COLUMN, State
from simgate.domain.queue import NewPart, PartReport, PartStatus, ReportHint, ReportTally
from simgate.store import driver_sql, jsonb_rows, unnest
from simgate.store.listed import in_list, listed
from simgate.store.messages import STATE_OF
from simgate.store.sqltext import chunks, execute_rows, one_of, positional_insert
from simgate.store.tables import message_parts, messages, orphan_reports

__all__ = ["PartMatch", "PartRef", "ReportRepo"]

RefKey = tuple[str, str]  # (line, line_ref)


class PartRef(NamedTuple):
    message_id: int
    seq: int


@dataclass(slots=True)
class PartMatch:
    """Reported refs whose part waits for its report, and refs whose part already has one.

    A ref may stand for several parts of one message (a long text the line sent as one
    payload under one id): ``found`` holds the first such part, ``more`` the others.
    """

    found: dict[RefKey, PartRef] = field(default_factory=dict)
    duplicate: set[RefKey] = field(default_factory=set)
    more: list[tuple[RefKey, PartRef]] = field(default_factory=list)


class _NoReport(NamedTuple):
    status_code: None = None
    done_ms: None = None


_NOT_REPORTED = _NoReport()
_PART_COLS: list[unnest.Col] = [
    ("message_id", "bigint"),
    ("seq", "smallint"),
    ("line", "text"),
    ("port", "int"),
    ("line_ref", "text"),
    ("status_code", "int"),
    ("reported_ms", "bigint"),
]


_PART_COLUMNS = tuple(name for name, _ in _PART_COLS)


class ReportRepo:
    async def insert_parts(
        self,
        conn: AsyncConnection,
        parts: Sequence[NewPart],
        *,
        reported: Mapping[tuple[int, int], PartStatus] | None = None,
    ) -> None:
        """Insert ``parts``; those in ``reported`` (by (message id, seq)) already carry the
        report that came before their submit was recorded (dispatch/report_hold.py)."""
        if not parts:
            return
        got = reported or {}
        none = _NOT_REPORTED
        if conn.dialect.name == "postgresql":  # one statement, not one per row
            await unnest.insert_rows(
                conn,
                message_parts.name,
                cols=_PART_COLS,
                rows=[
                    (p.message_id, p.seq, p.line, p.port, p.line_ref, s.status_code, s.done_ms)
                    for p in parts
                    for s in (got.get((p.message_id, p.seq), none),)
                ],
            )
            return
        # Tuples straight to the driver's executemany, one statement text (a Core insert
        # built and keyed per batch cost more than SQLite's work on small batches), on
        # SQLite's write connection itself (store/driver_sql.py: SQLAlchemy's execution
        # path cost ~50 µs of loop CPU per statement, issue 15).
        await driver_sql.run_many(
            conn,
            positional_insert(conn.dialect, message_parts.name, _PART_COLUMNS),
            [
                (p.message_id, p.seq, p.line, p.port, p.line_ref, s.status_code, s.done_ms)
                for p in parts
                for s in (got.get((p.message_id, p.seq), none),)
            ],
        )

    async def insert_parts_taking_orphans(
        self,
        conn: AsyncConnection,
        parts: Sequence[NewPart],
        *,
        reported: Mapping[tuple[int, int], PartStatus] | None = None,
    ) -> list[PartReport]:
        """:meth:`insert_parts`, then :meth:`take_orphans` of the parts' refs: the reports
        kept for them are removed and returned. On PostgreSQL one statement (the insert a
        data-modifying CTE of the orphans' DELETE, which joins the same arrays), not two
        round trips on every recorded batch (issue 15); on SQLite, which has no such CTE, the
        two statements."""
        if not parts:
            return []
        if conn.dialect.name != "postgresql":
            await self.insert_parts(conn, parts, reported=reported)
            return await self.take_orphans(conn, [(p.line, p.line_ref) for p in parts])
        got = reported or {}
        none = _NOT_REPORTED
        rows = jsonb_rows.encode(
            [
                (p.message_id, p.seq, p.line, p.port, p.line_ref, s.status_code, s.done_ms)
                for p in parts
                for s in (got.get((p.message_id, p.seq), none),)
            ]
        )
        # Straight on asyncpg (store/driver_sql.py): once per recorded worker batch, where
        # SQLAlchemy's execution path cost ~65 µs of CPU more per statement (issue 15).
        taken = await driver_sql.fetch(conn, _PG_PARTS_TAKING_ORPHANS_SQL, (rows,))
        return [_orphan_of(r) for r in taken]

    async def match_parts(self, conn: AsyncConnection, keys: Sequence[RefKey]) -> PartMatch:
        out = PartMatch()
        for where in _ref_chunks(message_parts, keys, conn.dialect):
            rows = await conn.execute(
                select(
                    message_parts.c.line,
                    message_parts.c.line_ref,
                    message_parts.c.message_id,
                    message_parts.c.seq,
                    message_parts.c.status_code,
                ).where(where)
            )
            for line, ref, mid, seq, code in rows:
                if code is None:
                    part = PartRef(mid, seq)
                    first = out.found.setdefault((line, ref), part)
                    # Only parts of the message found first: a ref the line used again
                    # later for another message (a TP-MR wraps at 256) reports one message.
                    if first is not part and first.message_id == mid:
                        out.more.append(((line, ref), part))
                else:
                    out.duplicate.add((line, ref))
        return out

    async def mark_parts(self, conn: AsyncConnection, statuses: Sequence[PartStatus]) -> None:
        await execute_rows(
            conn,
            update(message_parts)
            .where(
                message_parts.c.message_id == bindparam("b_mid"),
                message_parts.c.seq == bindparam("b_seq"),
            )
            .values(status_code=bindparam("b_code"), reported_ms=bindparam("b_done")),
            [
                {
                    "b_mid": s.message_id,
                    "b_seq": s.seq,
                    "b_code": s.status_code,
                    "b_done": s.done_ms,
                }
                for s in statuses
            ],
        )

    async def tallies(self, conn: AsyncConnection, ids: Sequence[int]) -> list[ReportTally]:
        out: list[ReportTally] = []
        for chunk in chunks(ids, 500):
            rows = await conn.execute(
                select(
                    messages.c.id,
                    # Every part the line gave a ref for, not messages.parts: a line may take
                    # a long text as one payload with one ref (SMPP message_payload).
                    func.count(message_parts.c.seq).label("recorded"),
                    messages.c.state,
                    func.count(message_parts.c.status_code).label("reported"),
                    func.max(message_parts.c.status_code).label("worst"),
                )
                .join(message_parts, message_parts.c.message_id == messages.c.id)
                .where(one_of(messages.c.id, chunk, dialect=conn.dialect))
                .group_by(messages.c.id, messages.c.state)
            )
            out.extend(
                ReportTally(
                    message_id=mid,
                    state=STATE_OF[state],
                    recorded=recorded,
                    reported=reported,
                    worst=worst,
                )
                for mid, recorded, state, reported, worst in rows
            )
        return out

    async def count_reported(self, conn: AsyncConnection, tallies: Sequence[ReportTally]) -> None:
        """Note how many parts are reported on messages still waiting for the rest."""
        await execute_rows(
            conn,
            update(messages)
            .where(messages.c.id == bindparam("b_id"))
            .values(parts_reported=bindparam("b_n")),
            [{"b_id": t.message_id, "b_n": t.reported} for t in tallies],
        )

    async def settle(
        self,
        conn: AsyncConnection,
        tallies: Sequence[ReportTally],
        *,
        sources: Sequence[State],
        target: State,
        now_ms: int,
    ) -> None:
        """End messages whose parts are all reported, where they are still in ``sources``,
        with the worst part's code (0 when every part was delivered)."""
        await execute_rows(
            conn,
            update(messages)
            .where(messages.c.id == bindparam("b_id"), _state_in(sources))
            .values(
                state=int(target),
                parts_reported=bindparam("b_n"),
                status_code=bindparam("b_code"),
                updated_ms=now_ms,
                lease_owner=None,
                lease_until_ms=None,
                **{STATE_TIME_COLUMN[target]: now_ms},
            ),
            [{"b_id": t.message_id, "b_n": t.reported, "b_code": t.worst or 0} for t in tallies],
        )

    async def keep_orphans(
        self, conn: AsyncConnection, orphans: Sequence[PartReport], *, now_ms: int
    ) -> None:
        """Reports whose part is not recorded yet; a newer one for a ref replaces the older."""
        keys = [(o.line, o.line_ref) for o in orphans]
        for where in _ref_chunks(orphan_reports, keys, conn.dialect):
            await conn.execute(delete(orphan_reports).where(where))
        await execute_rows(
            conn,
            insert(orphan_reports),
            [
                {
                    "line": o.line,
                    "line_ref": o.line_ref,
                    "status_code": o.status_code,
                    "done_ms": o.done_ms,
                    "received_ms": now_ms,
                    **_hint_columns(o.hint),
                }
                for o in orphans
            ],
        )

    async def take_orphans(self, conn: AsyncConnection, keys: Sequence[RefKey]) -> list[PartReport]:
        """Remove and return the orphans kept for ``keys``: one ``DELETE ... RETURNING`` per
        line (not a SELECT and a DELETE), its text made once (store/listed.py). Called on
        every recorded batch, which nearly always finds none (issue 15)."""
        dialect = conn.dialect.name
        by_line: dict[str, list[str]] = {}
        for line, ref in keys:
            by_line.setdefault(line, []).append(ref)
        found: list[PartReport] = []
        for line, refs in by_line.items():
            # Straight on the driver (store/driver_sql.py): on SQLite's write connection for
            # every recorded batch (issue 15).
            rows = await driver_sql.fetch(
                conn, _take_orphans_sql(dialect), (line, listed(dialect, refs))
            )
            found.extend(_orphan_of(r) for r in rows)
        return found

    async def hinted_orphans(
        self, conn: AsyncConnection, message_ids: Sequence[int]
    ) -> list[PartReport]:
        """The orphans whose line hinted at one of ``message_ids`` (left in place)."""
        found: list[PartReport] = []
        for chunk in chunks(message_ids, 500):
            rows = await conn.execute(
                select(orphan_reports).where(
                    one_of(orphan_reports.c.hint_message_id, chunk, dialect=conn.dialect)
                )
            )
            found.extend(_orphan(r) for r in rows)
        return found

    async def purge_orphans(self, conn: AsyncConnection, *, older_than_ms: int) -> int:
        result = await conn.execute(
            delete(orphan_reports).where(orphan_reports.c.received_ms < older_than_ms)
        )
        return int(result.rowcount or 0)


def _hint_columns(hint: ReportHint | None) -> dict[str, int | None]:
    if hint is None:
        return dict.fromkeys(_HINT_COLUMNS)
    return {
        "hint_message_id": hint.message_id,
        "hint_lease_seq": hint.lease_seq,
        "hint_part": hint.part,
        "hint_parts": hint.parts,
        "hint_port": hint.port,
        "hint_covers": hint.covers,
    }


_HINT_COLUMNS = (
    "hint_message_id",
    "hint_lease_seq",
    "hint_part",
    "hint_parts",
    "hint_port",
    "hint_covers",
)


def _orphan(r: Any) -> PartReport:
    hint = None
    if r.hint_message_id is not None:
        hint = ReportHint(
            message_id=r.hint_message_id,
            lease_seq=r.hint_lease_seq,
            part=r.hint_part,
            parts=r.hint_parts,
            port=r.hint_port,
            covers=r.hint_covers or 1,
        )
    return PartReport(
        line=r.line,
        line_ref=r.line_ref,
        status_code=r.status_code,
        done_ms=r.done_ms,
        hint=hint,
    )


_ORPHAN_COLUMNS = ("line", "line_ref", "status_code", "done_ms", *_HINT_COLUMNS)


@functools.cache
def _take_orphans_sql(dialect: str) -> str:
    """:meth:`ReportRepo.take_orphans`'s statement: parameters the line, then its refs.
    ``line = ? AND line_ref IN (...)``, not a row-value list: SQLite answers the latter
    with a full scan (see :func:`_ref_chunks`)."""
    refs = in_list(dialect, "line_ref", 2, "text")
    mark = "$1::varchar" if dialect == "postgresql" else "?1"
    returning = ", ".join(_ORPHAN_COLUMNS)
    return f"DELETE FROM orphan_reports WHERE line = {mark} AND {refs} RETURNING {returning}"


def _pg_parts_taking_orphans_sql() -> str:
    """:meth:`ReportRepo.insert_parts_taking_orphans` on PostgreSQL: the parts as one jsonb
    array of rows in :data:`_PART_COLS` order ($1, store/jsonb_rows.py: one orjson call
    where asyncpg's encoding of seven arrays was ~1.3 µs of client CPU per part, issue 15),
    read once (a materialised CTE); the orphans' keys are the same rows' line and line_ref,
    joined on the orphans' primary key. A data-modifying CTE runs once and to completion
    whether or not the outer statement reads it (PostgreSQL manual, "Data-Modifying
    Statements in WITH"); the DELETE does not see the parts inserted, nor needs to. The
    planner guesses 100 rows for ``jsonb_array_elements`` whatever it holds: the INSERT
    does not care, and the DELETE's join to the orphans (a table nearly always empty)
    looks up their primary key either way."""
    names = ", ".join(_PART_COLUMNS)
    returning = ", ".join(f"o.{c}" for c in _ORPHAN_COLUMNS)
    return (
        f"WITH k AS MATERIALIZED {jsonb_rows.source(_PART_COLS, 1)}, "
        f"parts AS (INSERT INTO message_parts ({names}) SELECT {names} FROM k) "
        "DELETE FROM orphan_reports AS o USING k "
        f"WHERE o.line = k.line AND o.line_ref = k.line_ref RETURNING {returning}"
    )


_PG_PARTS_TAKING_ORPHANS_SQL = _pg_parts_taking_orphans_sql()


def _orphan_of(row: Sequence[Any]) -> PartReport:
    """An orphan from a row of :data:`_ORPHAN_COLUMNS`."""
    line, line_ref, status_code, done_ms, mid, lease_seq, part, parts, port, covers = row
    hint = None
    if mid is not None:
        hint = ReportHint(
            message_id=mid,
            lease_seq=lease_seq,
            part=part,
            parts=parts,
            port=port,
            covers=covers or 1,
        )
    return PartReport(
        line=line, line_ref=line_ref, status_code=status_code, done_ms=done_ms, hint=hint
    )


def _state_in(states: Sequence[State]) -> ColumnElement[bool]:
    """``state IN (...)`` spelled as ORs: expanding IN cannot be used with executemany."""
    return or_(*(messages.c.state == int(s) for s in states))


def _ref_chunks(
    table: Table, keys: Sequence[RefKey], dialect: Dialect, size: int = 500
) -> list[ColumnElement[bool]]:
    """``line = ? AND line_ref IN (...)`` per line and chunk.

    Not ``(line, line_ref) IN ((?, ?), ...)``: SQLite answers a row-value IN list with a
    full scan, which made every report batch cost a scan of message_parts.
    """
    by_line: dict[str, list[str]] = {}
    for line, ref in keys:
        by_line.setdefault(line, []).append(ref)
    return [
        and_(table.c.line == line, one_of(table.c.line_ref, chunk, dialect=dialect))
        for line, refs in by_line.items()
        for chunk in chunks(refs, size)
    ]
