"""What the line said, written on the rows the dispatcher still holds (issue 15).

``write_submits`` writes a batch of the line's answers of one event; ``write_settled_submits``
writes SUBMIT_OK answers whose every part was reported before the answer was recorded
(dispatch/report_hold.py): SENT and settled to DELIVERED or FAILED in one row write, what
``write_submits`` then ``ReportRepo.settle`` would leave. On PostgreSQL each batch is one
``unnest`` statement (store/unnest.py: asyncpg's executemany runs the UPDATE once per row);
on SQLite one executemany (a C loop over one prepared statement).

Both share the columns every answer writes (:data:`_ANSWER_COLS`). On SQLite the caller reads
who holds the rows first (``MessageRepo.holders``, in its exclusive write transaction) and
passes only those it may write. On PostgreSQL it passes the rule instead (:class:`HeldBy`):
the UPDATE carries it and returns the ids it wrote, one statement where a read and a write
were two round trips (issue 15); and the row is checked as it is written, under its lock
(READ COMMITTED re-checks the condition on the newest row version), where a row read before
could change before the write.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.messages import STATE_TIME_COLUMN, Event, State
from simgate.domain.queue import ReportTally, SubmitRecord
from simgate.store import unnest
from simgate.store.tables import messages

__all__ = ["HeldBy", "guards", "write_settled_submits", "write_submits"]

_SUBMITTING, _UNKNOWN = int(State.SUBMITTING), int(State.UNKNOWN)


@dataclass(frozen=True, slots=True)
class HeldBy:
    """Which rows an answer may be written on: those ``owner`` still holds the lease of
    (SUBMITTING under it), and UNKNOWN ones: every one when ``any_unknown``, else those
    ``owner`` (not empty) left UNKNOWN. The messaging service says when each applies
    (services/messaging.py ``_held_by``); this is the rule in both forms the store needs, the
    Python one for rows read (:meth:`holds`) and the SQL one for an UPDATE (:meth:`pg_sql`),
    side by side so they cannot drift (tests/store/test_submit_writes.py)."""

    owner: str
    any_unknown: bool

    def holds(self, state: State, lease_owner: str | None) -> bool:
        if state is State.SUBMITTING:
            return lease_owner == self.owner
        if state is not State.UNKNOWN:
            return False
        return self.any_unknown or (bool(self.owner) and lease_owner == self.owner)

    def pg_sql(self, owner_mark: str) -> str:
        """The rule on row ``t``, the owner bound as ``owner_mark`` (a cast parameter)."""
        unknown = (
            "TRUE" if self.any_unknown else (f"{owner_mark} <> '' AND t.lease_owner = {owner_mark}")
        )
        return (
            f"(t.state = {_SUBMITTING} AND t.lease_owner = {owner_mark}) "
            f"OR (t.state = {_UNKNOWN} AND {unknown})"
        )


def guards(dialect: str) -> bool:
    """Whether the writes take a :class:`HeldBy` on this dialect (PostgreSQL)."""
    return dialect == "postgresql"


# Written by every answer, in this order at the head of each row (PostgreSQL arrays).
_ANSWER_COLS: list[unnest.Col] = [
    ("id", "bigint"),
    ("error_text", "text"),
    ("status_code", "int"),
    ("port", "int"),
    ("first_ref", "int"),
    ("parts_ok", "int"),
]
_SUBMIT_COLS = [*_ANSWER_COLS, ("due", "bigint"), ("inc", "int"), ("line", "text")]
_SETTLED_COLS = [*_ANSWER_COLS, ("parts_reported", "int")]


def _pg_assignments(times: Sequence[State]) -> list[str]:
    """The SET list every answer shares: $1 the target state, $2 the time."""
    return [
        "state = $1::smallint",
        "lease_owner = NULL",
        "lease_until_ms = NULL",
        "updated_ms = $2::bigint",
        *(f"{STATE_TIME_COLUMN[s]} = $2::bigint" for s in times),
        "error_text = v.error_text",
        "status_code = v.status_code",
        "port = coalesce(v.port, t.port)",
    ]


@functools.cache
def _sqlite_sql(times: tuple[State, ...], extra: tuple[str, ...]) -> str:
    """The same as :func:`_pg_assignments` for SQLite's one-row-at-a-time executemany, as
    positional SQL text made once per shape: building and compiling the Core UPDATE on every
    batch cost more than running it on the small batches of ``simgate run`` (issue 15).
    Parameters: the state, the time (once per column of ``times``), error text, status, port,
    one per assignment of ``extra`` and, last, the id."""
    sets = [
        "state = ?",
        "lease_owner = NULL",
        "lease_until_ms = NULL",
        "updated_ms = ?",
        *(f"{STATE_TIME_COLUMN[t]} = ?" for t in times),
        "error_text = ?",
        "status_code = ?",
        "port = coalesce(?, port)",
        *extra,
    ]
    return f"UPDATE {messages.name} SET {', '.join(sets)} WHERE id = ?"


async def _sqlite_update(
    conn: AsyncConnection,
    *,
    target: State,
    times: tuple[State, ...],
    now_ms: int,
    extra: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
) -> None:
    """One executemany of ``rows``: (id, error text, status, port, then one value for each
    assignment of ``extra``), straight to the driver."""
    head = (int(target), now_ms, *(now_ms for _ in times))
    params = [(*head, *row[1:], row[0]) for row in rows]
    await conn.exec_driver_sql(_sqlite_sql(times, extra), params)


_OK_SETS: tuple[str, ...] = ("first_ref = ?", "parts_ok = ?")
_RETRY_SETS: tuple[str, ...] = (
    "next_attempt_ms = ?",
    "attempts = attempts + ?",
    "line = coalesce(?, line)",
)


def _pg_guard(conn: AsyncConnection, held_by: HeldBy | None) -> tuple[str, tuple[Any, ...]]:
    """The condition and the extra fixed parameter ($3, the owner) of a guarded write."""
    if held_by is None:
        return "", ()
    if not guards(conn.dialect.name):
        raise ValueError("HeldBy is written on PostgreSQL only: read the holders on SQLite")
    return held_by.pg_sql("$3::varchar"), (held_by.owner,)


async def write_submits(
    conn: AsyncConnection,
    records: Sequence[SubmitRecord],
    *,
    target: State,
    now_ms: int,
    held_by: HeldBy | None = None,
) -> set[int] | None:
    """Write the line's answers (all of one event) on rows the caller still holds; or, with
    ``held_by`` (PostgreSQL), on those of them that ``held_by`` holds, returning their ids
    (None without it: every row was written)."""
    event = records[0].event
    rows = [
        (
            r.message_id,
            r.error_text,
            r.status_code,
            r.port,
            r.first_ref,
            len(r.part_refs),
            r.retry_at_ms,
            1 if r.count_attempt else 0,
            r.line,
        )
        for r in records
    ]
    if conn.dialect.name == "postgresql":
        assignments = _pg_assignments([target])
        if event is Event.SUBMIT_OK:
            assignments += ["first_ref = v.first_ref", "parts_ok = v.parts_ok"]
        elif event is Event.SUBMIT_RETRY:
            assignments += [
                "next_attempt_ms = v.due",
                "attempts = t.attempts + v.inc",
                "line = coalesce(v.line, t.line)",
            ]
        where, owner = _pg_guard(conn, held_by)
        return await unnest.update_rows(
            conn,
            messages.name,
            cols=_SUBMIT_COLS,
            rows=rows,
            assignments=assignments,
            fixed=(int(target), now_ms, *owner),
            where=where,
        )
    _pg_guard(conn, held_by)  # refuses a guard here
    # Rows are (id, error, status, port, first_ref, parts_ok, due, inc, line): each event
    # writes the columns it sets of them.
    extra: tuple[str, ...]
    written: list[tuple[Any, ...]]
    if event is Event.SUBMIT_OK:
        extra, written = _OK_SETS, [r[:6] for r in rows]
    elif event is Event.SUBMIT_RETRY:
        extra, written = _RETRY_SETS, [(*r[:4], *r[6:]) for r in rows]
    else:
        extra, written = (), [r[:4] for r in rows]
    await _sqlite_update(
        conn, target=target, times=(target,), now_ms=now_ms, extra=extra, rows=written
    )
    return None


async def write_settled_submits(
    conn: AsyncConnection,
    done: Sequence[tuple[SubmitRecord, ReportTally]],
    *,
    target: State,
    now_ms: int,
    held_by: HeldBy | None = None,
) -> set[int] | None:
    """Write SUBMIT_OK answers whose every part was reported before the answer was
    recorded: SENT and settled to ``target`` (DELIVERED or FAILED) in one row write, on
    rows the caller still holds (what write_submits then ReportRepo.settle would write);
    ``held_by`` and the answer as :func:`write_submits`'s."""
    rows = [
        (
            r.message_id,
            r.error_text,
            t.worst or 0,
            r.port,
            r.first_ref,
            len(r.part_refs),
            t.reported,
        )
        for r, t in done
    ]
    times = [State.SENT, target]
    if conn.dialect.name == "postgresql":
        where, owner = _pg_guard(conn, held_by)
        return await unnest.update_rows(
            conn,
            messages.name,
            cols=_SETTLED_COLS,
            rows=rows,
            assignments=[
                *_pg_assignments(times),
                "first_ref = v.first_ref",
                "parts_ok = v.parts_ok",
                "parts_reported = v.parts_reported",
            ],
            fixed=(int(target), now_ms, *owner),
            where=where,
        )
    _pg_guard(conn, held_by)  # refuses a guard here
    await _sqlite_update(
        conn,
        target=target,
        times=tuple(times),
        now_ms=now_ms,
        extra=(*_OK_SETS, "parts_reported = ?"),
        rows=rows,
    )
    return None
