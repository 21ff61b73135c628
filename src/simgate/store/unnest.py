"""Row-wise writes as one statement on PostgreSQL: ``unnest`` of one array per column.

asyncpg's executemany binds and executes the statement once per row: on the dispatcher's
record path an UPDATE of a 500-row batch took ~120 ms that way against ~40 ms for the lease's
single UPDATE of as many rows (issue 15). Sent as arrays, the batch is one statement, one
plan and one round trip (the record path's UPDATE is now store/submit_writes.py's guarded
one, which takes its rows as one jsonb array instead: store/jsonb_rows.py). SQLite keeps
``execute_rows`` (its executemany is a C loop over one prepared statement, already the cheap
way there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["Col", "arrays", "insert_rows"]

Col = tuple[str, str]  # (name, PostgreSQL element type)


def arrays(cols: Sequence[Col], rows: Sequence[Sequence[Any]], first: int) -> tuple[str, list[Any]]:
    """``unnest($first::type[], ...)`` of ``cols`` and its parameters, one list per column
    of ``rows``; for a statement that writes the rows with more around them (the accept
    batch of store/accept_writes.py ``insert_claimed``)."""
    unnest = ", ".join(f"${first + i}::{typ}[]" for i, (_, typ) in enumerate(cols))
    columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in cols]
    return f"unnest({unnest})", columns


async def insert_rows(
    conn: AsyncConnection, table: str, *, cols: Sequence[Col], rows: Sequence[Sequence[Any]]
) -> None:
    """``INSERT INTO table (cols) SELECT * FROM unnest(...)``."""
    if not rows:
        return
    source, values = arrays(cols, rows, 1)
    names = ", ".join(name for name, _ in cols)
    await conn.exec_driver_sql(
        f"INSERT INTO {table} ({names}) SELECT * FROM {source}", tuple(values)
    )
