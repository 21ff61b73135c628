"""The lease primitive every queue table shares: messages, calls and pushes.

The database is the queue (design principle 3): a worker takes due rows by stamping them with
its lease in one write transaction, so two workers never hold the same row. On PostgreSQL the
due rows are locked ``FOR UPDATE SKIP LOCKED`` (a row another worker is taking right now is
skipped, not waited for); SQLite's write transaction is already exclusive, so the plain
query is enough there. The dialect branch lives here once.

- :func:`lease`: one statement, ``UPDATE ... WHERE id IN (due) RETURNING``, for queues that take
  the first ``limit`` due rows as they come (messages, calls).
- :func:`due_locked` then :func:`stamp`: for a queue that chooses among the locked due rows
  in Python before it stamps the chosen ones (pushes: a window per endpoint).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, Table, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store.sqltext import marks

__all__ = ["due_locked", "lease", "stamp"]


async def lease(
    conn: AsyncConnection,
    table: Table,
    *,
    due: ColumnElement[bool],
    order_by: Sequence[ColumnElement[Any]],
    limit: int,
    guard: ColumnElement[bool],
    set_values: Mapping[str, Any],
    returning: Sequence[ColumnElement[Any]],
) -> list[Row[Any]]:
    """Stamp ``set_values`` on up to ``limit`` rows matching ``due`` (first by ``order_by``)
    that still match ``guard`` when updated; their ``returning`` columns, in no set order."""
    key = table.c.id
    due_ids = select(key).where(due).order_by(*order_by).limit(limit)
    if conn.dialect.name == "postgresql":
        # A materialised CTE runs the locking SELECT once. As an IN (subquery), PostgreSQL
        # may rescan it, skip the rows this very UPDATE already changed, and so lease more
        # than ``limit`` rows (seen in tests/store/test_queue.py).
        cte = due_ids.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
        picked = key.in_(select(cte.c.id))
    else:
        picked = key.in_(due_ids.scalar_subquery())
    result = await conn.execute(
        update(table).where(picked, guard).values(**set_values).returning(*returning)
    )
    return list(result)


def due_locked(conn: AsyncConnection, query: Select[Any], *, of: Table) -> Select[Any]:
    """``query`` (the due rows of ``of``) locked for this transaction, skipping rows another
    worker has locked, on PostgreSQL; as it is on SQLite."""
    if conn.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True, of=of)
    return query


async def stamp(
    conn: AsyncConnection,
    table: Table,
    ids: Sequence[int],
    *,
    set_values: Mapping[str, Any],
    returning: Sequence[ColumnElement[Any]],
) -> list[Row[Any]]:
    """Stamp ``set_values`` (the lease) on the rows chosen from :func:`due_locked`; their
    ``returning`` columns, in no set order.

    One statement for any number of rows, its text built once per shape (issue 15): the ids
    travel as one parameter (a JSON array on SQLite, an array on PostgreSQL), so neither an
    IN list per chunk nor SQLAlchemy's construction and compilation run per claim (they were
    a fifth of the SQLite push claim's time, py-spy of bench/push_throughput.py)."""
    if not ids:
        return []
    names = tuple(set_values)
    sql = _stamp_sql(conn.dialect, table.name, names, tuple(str(c.key) for c in returning))
    if conn.dialect.name == "postgresql":
        keys: Any = list(ids)
    else:
        keys = json.dumps(list(ids))
    return list(await conn.exec_driver_sql(sql, (*(set_values[n] for n in names), keys)))


@functools.cache
def _stamp_sql(dialect: Dialect, table: str, names: tuple[str, ...], out: tuple[str, ...]) -> str:
    """``stamp``'s statement: ``UPDATE table SET names WHERE id IN (the ids) RETURNING out``,
    positional parameters in ``names`` order, then the ids."""
    *values, keys = marks(dialect, len(names) + 1)
    if dialect.name == "postgresql":
        picked = f"id = ANY({keys}::bigint[])"
    else:
        picked = f"id IN (SELECT value FROM json_each({keys}))"
    quote = dialect.identifier_preparer.quote
    sets = ", ".join(f"{quote(n)} = {m}" for n, m in zip(names, values, strict=True))
    cols = ", ".join(quote(c) for c in out)
    return f"UPDATE {quote(table)} SET {sets} WHERE {picked} RETURNING {cols}"
