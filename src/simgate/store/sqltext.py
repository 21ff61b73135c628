"""Small SQL helpers the repositories share: chunked IN lists, positional parameter marks and
raw multi-row INSERTs."""

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
from sqlalchemy.util import LRUCache

from simgate.store import driver_sql


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` in slices of ``size`` (bounded IN lists and parameter counts)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def marks(dialect: Dialect, count: int) -> list[str]:
    """``count`` positional parameter marks for statement text handed to ``exec_driver_sql``,
    bound in order: ``$1, $2, ...`` for asyncpg (numeric_dollar), ``?`` for SQLite (qmark).
    Each mark is used once, where its value comes in the parameter tuple."""
    if dialect.paramstyle == "numeric_dollar":  # asyncpg
        return [f"${i + 1}" for i in range(count)]
    assert dialect.paramstyle == "qmark", dialect.paramstyle
    return ["?"] * count


@functools.cache
def positional_insert(dialect: Dialect, table: str, columns: tuple[str, ...]) -> str:
    """``INSERT INTO table (columns) VALUES (...)`` with positional parameters in ``columns``
    order, for ``exec_driver_sql`` with a list of tuples: the driver's executemany, without
    SQLAlchemy building a dict per row (the accept paths insert thousands of rows)."""
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    values = ", ".join(marks(dialect, len(columns)))
    return f"INSERT INTO {quote(table)} ({names}) VALUES ({values})"


# Statements compiled for execute_rows, by SQLAlchemy's cache key (structure, not values),
# dialect and bound columns. Bounded: the keys are a few dozen shapes of the record and
# report paths; an LRU only guards against a caller that builds ever new shapes.
COMPILED_CACHE_SIZE = 256
_compiled: LRUCache[tuple[Any, ...], SQLCompiler] = LRUCache(COMPILED_CACHE_SIZE)


def compiled_for(
    stmt: ClauseElement, dialect: Dialect, column_keys: Sequence[str]
) -> tuple[SQLCompiler, Mapping[str, Any]]:
    """``stmt`` compiled for ``dialect`` with ``column_keys`` bound per row, and the values
    the statement carries itself (literals such as ``now_ms``, by bind name).

    The compilation is reused for every statement of the same shape (issue 15: compiling
    on every call was ~8 % of ``simgate run``'s CPU under load). SQLAlchemy's cache key
    tells shapes apart and lists this statement's own bound values in the same order as
    the cached compilation's, so ``construct_params`` gives this statement's values, as
    Core's execution does with its own statement cache."""
    keys = tuple(column_keys)
    cache_key = stmt._generate_cache_key()
    if cache_key is None:  # an element SQLAlchemy cannot cache: compile it each time
        compiled = cast(SQLCompiler, stmt.compile(dialect=dialect, column_keys=list(keys)))
        return compiled, compiled.params
    slot = (dialect, cache_key.key, keys)
    cached = _compiled.get(slot)
    if cached is None:
        cached = _compiled[slot] = cast(
            SQLCompiler, stmt.compile(dialect=dialect, column_keys=list(keys), cache_key=cache_key)
        )
    # The row keys are given per row; None here only satisfies the check for values.
    fixed = cached.construct_params(
        params=dict.fromkeys(keys), extracted_parameters=cache_key.bindparams
    )
    return cached, fixed


async def execute_rows(
    conn: AsyncConnection, stmt: ClauseElement, rows: Sequence[Mapping[str, Any]]
) -> None:
    """``stmt`` once per row of bind values, compiled once per shape (:func:`compiled_for`)
    and run by the driver's executemany with a tuple per row. SQLAlchemy's own executemany
    builds and processes a dict per row and bind (``construct_params``): on the
    dispatcher's record path that was the largest single cost of a batch (issue 15).
    Values ``stmt`` carries itself (literals such as ``now_ms``) are the same in every row;
    rows give the named ``bindparam`` s."""
    if not rows:
        return
    # As Core's executemany does: the first row's keys name the columns an INSERT sets.
    compiled, fixed = compiled_for(stmt, conn.dialect, list(rows[0]))
    order = compiled.positiontup
    assert order is not None, "a positional dialect (sqlite, asyncpg)"
    pick = operator.itemgetter(*order)
    if len(order) == 1:
        params = [(pick({**fixed, **row}),) for row in rows]
    else:
        params = [pick({**fixed, **row}) for row in rows]
    # Straight on the driver (store/driver_sql.py: SQLite's write connection, asyncpg in a
    # transaction), where SQLAlchemy's execution path cost 50-65 µs of CPU more (issue 15).
    await driver_sql.run_many(conn, compiled.string, params)


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
