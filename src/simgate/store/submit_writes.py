"""What the line said, written on the rows the dispatcher still holds (issue 15).

``write_submits`` writes a batch of the line's answers of one event; ``write_settled_submits``
writes SUBMIT_OK answers whose every part was reported before the answer was recorded
(dispatch/report_hold.py): SENT and settled to DELIVERED or FAILED in one row write, what
``write_submits`` then ``ReportRepo.settle`` would leave.

Each batch is one UPDATE that carries the lease rule (:class:`HeldBy`) and returns the ids it
wrote: the rows come as one JSON array of rows, read by ``jsonb_array_elements`` on PostgreSQL
(store/jsonb_rows.py; an array per column cost ~1.3 µs of client CPU per row in asyncpg's
encoding) and by ``json_each`` on SQLite, joined on the id. PostgreSQL's planner guesses 100
rows for ``jsonb_array_elements`` whatever it holds (an array's length it knew): for a batch
of one, it then found a scan of a young messages table cheaper than a look-up by id. The
rows are LIMITed to their own count, which the planner takes as its guess (up to 100): the
plans are the arrays' (tests/services/test_held_answers.py).

Before, the holders were read first and the rows written after: two statements, and on
PostgreSQL two round trips, on every recorded batch (issue 15; on SQLite, measured in one write
transaction, the one statement with ``RETURNING`` cost 120 µs of CPU for 4 rows where the read
and an executemany cost 185, and 3.8 ms where they cost 4.5 for 500). And the row is checked as
it is written, under its lock (PostgreSQL's READ COMMITTED re-checks the condition on the
newest row version), where a row read before could change before the write
(tests/services/test_held_answers.py).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.messages import STATE_TIME_COLUMN, Event, State
from simgate.domain.queue import ReportTally, SubmitRecord
from simgate.store import driver_sql, jsonb_rows, unnest
from simgate.store.tables import messages

__all__ = ["HeldBy", "write_settled_submits", "write_submits"]

_SUBMITTING, _UNKNOWN = int(State.SUBMITTING), int(State.UNKNOWN)


@dataclass(frozen=True, slots=True)
class HeldBy:
    """Which rows an answer may be written on: those ``owner`` still holds the lease of
    (SUBMITTING under it), and UNKNOWN ones: every one when ``any_unknown``, else those
    ``owner`` (not empty) left UNKNOWN. The messaging service says when each applies
    (services/messaging.py ``_held_by``); this is the rule as the UPDATEs write it
    (:meth:`sql`) and as Python (:meth:`holds`, what tests/services/test_held_answers.py
    holds the SQL to)."""

    owner: str
    any_unknown: bool

    def holds(self, state: State, lease_owner: str | None) -> bool:
        if state is State.SUBMITTING:
            return lease_owner == self.owner
        if state is not State.UNKNOWN:
            return False
        return self.any_unknown or (bool(self.owner) and lease_owner == self.owner)

    def sql(self, owner_mark: str) -> str:
        """The rule on row ``t``, the owner bound as ``owner_mark``."""
        unknown = (
            "TRUE" if self.any_unknown else (f"{owner_mark} <> '' AND t.lease_owner = {owner_mark}")
        )
        return (
            f"(t.state = {_SUBMITTING} AND t.lease_owner = {owner_mark}) "
            f"OR (t.state = {_UNKNOWN} AND {unknown})"
        )


# The values of each answer, in this order (PostgreSQL element types); the id first.
_SUBMIT_COLS: list[unnest.Col] = [
    ("id", "bigint"),
    ("error_text", "text"),
    ("status_code", "int"),
    ("port", "int"),
    ("first_ref", "int"),
    ("parts_ok", "int"),
    ("due", "bigint"),
    ("inc", "int"),
    ("line", "text"),
]
_SETTLED_COLS: list[unnest.Col] = [*_SUBMIT_COLS[:6], ("parts_reported", "int")]

# What each kind of write sets from the values: (column, value, expression of it on row t).
_Set = tuple[str, str, str]
_ANSWER_SETS: tuple[_Set, ...] = (
    ("error_text", "error_text", "{}"),
    ("status_code", "status_code", "{}"),
    ("port", "port", "coalesce({}, t.port)"),
)
_OK_SETS: tuple[_Set, ...] = (("first_ref", "first_ref", "{}"), ("parts_ok", "parts_ok", "{}"))
_SETS: dict[str, tuple[_Set, ...]] = {
    "plain": _ANSWER_SETS,
    "ok": (*_ANSWER_SETS, *_OK_SETS),
    "retry": (
        *_ANSWER_SETS,
        ("next_attempt_ms", "due", "{}"),
        ("attempts", "inc", "t.attempts + {}"),
        ("line", "line", "coalesce({}, t.line)"),
    ),
    "settled": (*_ANSWER_SETS, *_OK_SETS, ("parts_reported", "parts_reported", "{}")),
}


@functools.cache
def _sql(dialect: str, kind: str, times: tuple[State, ...], any_unknown: bool) -> str:
    """The guarded UPDATE of one kind of answer, made once per shape. Parameters: the target
    state, the time, the owner, then the rows: one JSON array of rows in the order of the
    kind's columns, :data:`_SUBMIT_COLS` or :data:`_SETTLED_COLS` (:func:`_encoded`). The
    owner is bound, not written into the text (nor a key of this cache): one text for
    every worker."""
    rule = HeldBy(owner="", any_unknown=any_unknown)  # its SQL names the owner's mark only
    cols = _SETTLED_COLS if kind == "settled" else _SUBMIT_COLS
    at = {name: i for i, (name, _) in enumerate(cols)}
    pg = dialect == "postgresql"
    state, now, owner = ("$1::smallint", "$2::bigint", "$3::varchar") if pg else ("?1", "?2", "?3")

    def value(name: str) -> str:
        return f"v.{name}" if pg else f"(v.value ->> {at[name]})"

    sets = [
        f"state = {state}",
        "lease_owner = NULL",
        "lease_until_ms = NULL",
        f"updated_ms = {now}",
        *(f"{STATE_TIME_COLUMN[t]} = {now}" for t in times),
        *(f"{column} = {expr.format(value(name))}" for column, name, expr in _SETS[kind]),
    ]
    if pg:
        # LIMIT the rows' own count ($5): the planner's guess for them (module docstring).
        limited = f"SELECT * FROM {jsonb_rows.source(cols, 4)} AS s LIMIT $5::bigint"
        rows, key, written = f"({limited}) AS v", "v.id", "t.id"
    else:  # SQLite's RETURNING names the updated table's columns only, unqualified
        rows, key, written = "json_each(?4) AS v", value("id"), "id"
    return (
        f"UPDATE {messages.name} AS t SET {', '.join(sets)} FROM {rows} "
        f"WHERE t.id = {key} AND ({rule.sql(owner)}) RETURNING {written}"
    )


async def _write(
    conn: AsyncConnection,
    kind: str,
    rows: Sequence[Sequence[Any]],
    *,
    target: State,
    times: tuple[State, ...],
    now_ms: int,
    held_by: HeldBy,
) -> set[int]:
    if not rows:
        return set()
    dialect = conn.dialect.name
    fixed = (int(target), now_ms, held_by.owner)
    # The rows as one JSON array of arrays: on PostgreSQL one jsonb parameter
    # (store/jsonb_rows.py), where asyncpg's encoding of an array per column cost ~1.3 µs
    # of client CPU per row (issue 15); on SQLite the text json_each reads.
    params: tuple[Any, ...] = (*fixed, _encoded(rows))
    if dialect == "postgresql":
        params += (len(rows),)
    sql = _sql(dialect, kind, times, held_by.any_unknown)
    # Straight on SQLite's write connection (store/driver_sql.py): once per kind of answer
    # of a worker batch, where SQLAlchemy's execution path cost ~50 µs of loop CPU.
    return {int(mid) for (mid,) in await driver_sql.fetch(conn, sql, params)}


def _encoded(rows: Sequence[Sequence[Any]]) -> str:
    """``rows`` as one JSON array: orjson's (a C call), or the standard library's for text
    orjson refuses (a lone surrogate: escaped as before, which SQLite keeps and PostgreSQL
    refuses, as asyncpg refused it in an array)."""
    try:
        return jsonb_rows.encode(rows)
    except orjson.JSONEncodeError:
        return json.dumps(rows)


_KIND = {Event.SUBMIT_OK: "ok", Event.SUBMIT_RETRY: "retry"}


async def write_submits(
    conn: AsyncConnection,
    records: Sequence[SubmitRecord],
    *,
    target: State,
    now_ms: int,
    held_by: HeldBy,
) -> set[int]:
    """Write the line's answers (all of one event) on those of their rows that ``held_by``
    holds; returns the ids written."""
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
    kind = _KIND.get(records[0].event, "plain") if records else "plain"
    return await _write(
        conn, kind, rows, target=target, times=(target,), now_ms=now_ms, held_by=held_by
    )


async def write_settled_submits(
    conn: AsyncConnection,
    done: Sequence[tuple[SubmitRecord, ReportTally]],
    *,
    target: State,
    now_ms: int,
    held_by: HeldBy,
) -> set[int]:
    """Write SUBMIT_OK answers whose every part was reported before the answer was
    recorded: SENT and settled to ``target`` (DELIVERED or FAILED) in one row write (what
    write_submits then ReportRepo.settle would write), on those of their rows that
    ``held_by`` holds; returns the ids written."""
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
    return await _write(
        conn,
        "settled",
        rows,
        target=target,
        times=(State.SENT, target),
        now_ms=now_ms,
        held_by=held_by,
    )
