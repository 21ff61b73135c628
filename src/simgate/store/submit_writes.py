"""What the line said, written on the rows the dispatcher still holds (issue 15).

``write_submits`` writes a batch of the line's answers of one event; ``write_settled_submits``
writes SUBMIT_OK answers whose every part was reported before the answer was recorded
(dispatch/report_hold.py): SENT and settled to DELIVERED or FAILED in one row write, what
``write_submits`` then ``ReportRepo.settle`` would leave. On PostgreSQL each batch is one
``unnest`` statement (store/unnest.py: asyncpg's executemany runs the UPDATE once per row);
on SQLite one executemany (a C loop over one prepared statement).

Both share the columns every answer writes (:data:`_ANSWER_COLS`); the caller passes the
states the rows may leave from through the messaging service, so these only write.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.messages import STATE_TIME_COLUMN, Event, State
from simgate.domain.queue import ReportTally, SubmitRecord
from simgate.store import unnest
from simgate.store.tables import messages

__all__ = ["write_settled_submits", "write_submits"]

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


async def write_submits(
    conn: AsyncConnection, records: Sequence[SubmitRecord], *, target: State, now_ms: int
) -> None:
    """Write the line's answers (all of one event) on rows the caller still holds."""
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
        await unnest.update_rows(
            conn,
            messages.name,
            cols=_SUBMIT_COLS,
            rows=rows,
            assignments=assignments,
            fixed=(int(target), now_ms),
        )
        return
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


async def write_settled_submits(
    conn: AsyncConnection,
    done: Sequence[tuple[SubmitRecord, ReportTally]],
    *,
    target: State,
    now_ms: int,
) -> None:
    """Write SUBMIT_OK answers whose every part was reported before the answer was
    recorded: SENT and settled to ``target`` (DELIVERED or FAILED) in one row write, on
    rows the caller still holds (what write_submits then ReportRepo.settle would write)."""
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
        await unnest.update_rows(
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
            fixed=(int(target), now_ms),
        )
        return
    await _sqlite_update(
        conn,
        target=target,
        times=tuple(times),
        now_ms=now_ms,
        extra=(*_OK_SETS, "parts_reported = ?"),
        rows=rows,
    )
