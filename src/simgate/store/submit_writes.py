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

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, update
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.messages import STATE_TIME_COLUMN, Event, State
from simgate.domain.queue import ReportTally, SubmitRecord
from simgate.store import unnest
from simgate.store.sqltext import execute_rows
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
_C = messages.c


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


def _sqlite_values(target: State, times: Sequence[State], now_ms: int) -> dict[str, Any]:
    """The same as :func:`_pg_assignments`, with bind parameters named ``b_*``."""
    return {
        "state": int(target),
        "lease_owner": None,
        "lease_until_ms": None,
        "updated_ms": now_ms,
        **{STATE_TIME_COLUMN[s]: now_ms for s in times},
        "error_text": bindparam("b_error"),
        "status_code": bindparam("b_status"),
        "port": func.coalesce(bindparam("b_port"), _C.port),
    }


async def _sqlite_update(
    conn: AsyncConnection,
    values: dict[str, Any],
    rows: Sequence[Sequence[Any]],
    names: Sequence[str],
) -> None:
    """One executemany of ``rows``, whose items are bound as ``b_<name>`` in order."""
    params = [dict(zip(names, row, strict=True)) for row in rows]
    await execute_rows(
        conn, update(messages).where(_C.id == bindparam("b_id")).values(**values), params
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
    values = _sqlite_values(target, [target], now_ms)
    if event is Event.SUBMIT_OK:
        values.update(first_ref=bindparam("b_ref"), parts_ok=bindparam("b_ok"))
    elif event is Event.SUBMIT_RETRY:
        values.update(
            next_attempt_ms=bindparam("b_due"),
            attempts=_C.attempts + bindparam("b_inc"),
            line=func.coalesce(bindparam("b_line"), _C.line),
        )
    names = ("b_id", "b_error", "b_status", "b_port", "b_ref", "b_ok", "b_due", "b_inc", "b_line")
    await _sqlite_update(conn, values, rows, names)


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
    values = _sqlite_values(target, times, now_ms)
    values.update(
        first_ref=bindparam("b_ref"), parts_ok=bindparam("b_ok"), parts_reported=bindparam("b_n")
    )
    names = ("b_id", "b_error", "b_status", "b_port", "b_ref", "b_ok", "b_n")
    await _sqlite_update(conn, values, rows, names)
