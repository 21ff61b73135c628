"""Small SQL helpers the repositories share: chunked IN lists and raw multi-row INSERTs."""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import String, any_, bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, ColumnElement


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` in slices of ``size`` (bounded IN lists and parameter counts)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


@functools.cache
def positional_insert(dialect: Dialect, table: str, columns: tuple[str, ...]) -> str:
    """``INSERT INTO table (columns) VALUES (...)`` with positional parameters in ``columns``
    order, for ``exec_driver_sql`` with a list of tuples: the driver's executemany, without
    SQLAlchemy building a dict per row (the accept paths insert thousands of rows)."""
    quote = dialect.identifier_preparer.quote
    if dialect.paramstyle == "numeric_dollar":  # asyncpg
        marks = [f"${i + 1}" for i in range(len(columns))]
    else:
        assert dialect.paramstyle == "qmark", dialect.paramstyle
        marks = ["?"] * len(columns)
    names = ", ".join(quote(name) for name in columns)
    return f"INSERT INTO {quote(table)} ({names}) VALUES ({', '.join(marks)})"


async def execute_rows(
    conn: AsyncConnection, stmt: ClauseElement, rows: Sequence[Mapping[str, Any]]
) -> None:
    """``stmt`` once per row of bind values, compiled once and run by the driver's
    executemany with a tuple per row. SQLAlchemy's own executemany builds and processes a
    dict per row and bind (``construct_params``): on the dispatcher's record path that was
    the largest single cost of a batch (issue 15). Values ``stmt`` carries itself (literals
    such as ``now_ms``) are the same in every row; rows give the named ``bindparam`` s."""
    if not rows:
        return
    # As Core's executemany does: the first row's keys name the columns an INSERT sets.
    compiled = cast(SQLCompiler, stmt.compile(dialect=conn.dialect, column_keys=list(rows[0])))
    order = compiled.positiontup
    assert order is not None, "a positional dialect (sqlite, asyncpg)"
    fixed = compiled.params
    pick = operator.itemgetter(*order)
    if len(order) == 1:
        params = [(pick({**fixed, **row}),) for row in rows]
    else:
        params = [pick({**fixed, **row}) for row in rows]
    await conn.exec_driver_sql(compiled.string, params)


def one_of(
    column: ColumnElement[Any], values: Sequence[Any], *, dialect: Dialect
) -> ColumnElement[bool]:
    """``column IN (values)`` with the whole list as one bound value: a JSON array read by
    ``json_each`` on SQLite, an array for ``= ANY`` on PostgreSQL. An expanding ``IN`` renders
    and binds one parameter per value at every execution: with the record path's lists of
    500 ids and refs, a few milliseconds a batch (issue 15). Both forms search the column's
    index once per value (EXPLAIN QUERY PLAN: ``SEARCH ... USING INDEX``, ``LIST SUBQUERY``)."""
    if dialect.name == "sqlite":
        listed = func.json_each(bindparam(None, json.dumps(list(values)), type_=String))
        return column.in_(select(literal_column("value")).select_from(listed))
    return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
