"""The shared SQL helpers, on both backends: driver executemany, one-value IN lists and
positional parameter marks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.dialects.sqlite import aiosqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.store import Store
from simgate.store.sqltext import compiled_for, execute_rows, marks, one_of, positional_insert
from simgate.store.tables import kv, messages

from ..store.util import account, queue


async def test_execute_rows_binds_each_row_and_the_statement_s_own_values(
    services: Services, runtime: Runtime, store: Store
) -> None:
    acc = await account(services)
    ids = await queue(runtime, acc, 3)
    stmt = (
        update(messages)
        .where(messages.c.id == bindparam("b_id"))
        .values(error_text=bindparam("b_text"), updated_ms=12345)
    )

    async def job(conn: AsyncConnection) -> None:
        await execute_rows(
            conn, stmt, [{"b_id": ids[0], "b_text": "a"}, {"b_id": ids[2], "b_text": "c"}]
        )

    await store.db.write(job)
    async with store.db.read() as conn:
        rows = (
            await conn.execute(
                select(messages.c.id, messages.c.error_text, messages.c.updated_ms).order_by(
                    messages.c.id
                )
            )
        ).all()
    assert [(r.error_text, r.updated_ms == 12345) for r in rows] == [
        ("a", True),
        (None, False),
        ("c", True),
    ]


def _stamp(at_ms: int) -> Any:
    """The same shape each time, with its own ``updated_ms``."""
    return (
        update(messages)
        .where(messages.c.id == bindparam("b_id"))
        .values(error_text=bindparam("b_text"), updated_ms=at_ms)
    )


async def test_statements_of_one_shape_share_a_compilation_and_keep_their_own_values(
    services: Services, runtime: Runtime, store: Store
) -> None:
    acc = await account(services)
    ids = await queue(runtime, acc, 2)

    async def job(conn: AsyncConnection) -> None:
        await execute_rows(conn, _stamp(111), [{"b_id": ids[0], "b_text": "a"}])
        await execute_rows(conn, _stamp(222), [{"b_id": ids[1], "b_text": "b"}])

    await store.db.write(job)
    async with store.db.read() as conn:
        rows = (
            await conn.execute(
                select(messages.c.error_text, messages.c.updated_ms).order_by(messages.c.id)
            )
        ).all()
        dialect = conn.dialect
    assert [tuple(r) for r in rows] == [("a", 111), ("b", 222)]
    first, first_values = compiled_for(_stamp(1), dialect, ["b_id", "b_text"])
    again, again_values = compiled_for(_stamp(2), dialect, ["b_id", "b_text"])
    assert again is first
    assert (first_values["updated_ms"], again_values["updated_ms"]) == (1, 2)


def test_other_bound_columns_are_another_compilation() -> None:
    """An INSERT's columns are the first row's keys: each set has its own SQL."""
    dialect = sqlite.dialect(paramstyle="qmark")
    both, _ = compiled_for(insert(kv), dialect, ["key", "value"])
    key_only, _ = compiled_for(insert(kv), dialect, ["key"])
    assert both is not key_only
    assert both.string == 'INSERT INTO kv ("key", value) VALUES (?, ?)'
    assert key_only.string == 'INSERT INTO kv ("key") VALUES (?)'


async def test_one_of_matches_ids_and_strings_given_as_one_value(
    services: Services, runtime: Runtime, store: Store
) -> None:
    acc = await account(services)
    ids = await queue(runtime, acc, 4)
    async with store.db.read() as conn:
        by_id = await conn.execute(
            select(messages.c.id).where(one_of(messages.c.id, ids[1:3], dialect=conn.dialect))
        )
        by_ref = await conn.execute(
            select(messages.c.client_ref).where(
                one_of(messages.c.client_ref, ["ref0", "ref3", "it's"], dialect=conn.dialect)
            )
        )
        assert sorted(r.id for r in by_id) == ids[1:3]
        assert sorted(r.client_ref for r in by_ref) == ["ref0", "ref3"]


def test_marks_are_numbered_for_asyncpg_and_question_marks_for_sqlite() -> None:
    pg = asyncpg.dialect()  # type: ignore[no-untyped-call]
    assert marks(pg, 3) == ["$1", "$2", "$3"]
    assert marks(aiosqlite.dialect(), 3) == ["?", "?", "?"]
    assert marks(aiosqlite.dialect(), 0) == []
    assert positional_insert(pg, "kv", ("key", "value")) == (
        "INSERT INTO kv (key, value) VALUES ($1, $2)"
    )


async def test_marks_bind_the_parameters_in_order(store: Store) -> None:
    """Text built with ``marks`` runs on the backend's own driver, values bound in order."""

    async def job(conn: AsyncConnection) -> list[Any]:
        await conn.exec_driver_sql(
            positional_insert(conn.dialect, "kv", ("key", "value")), [("a", "1"), ("b", "2")]
        )
        new, key = marks(conn.dialect, 2)
        await conn.exec_driver_sql(f"UPDATE kv SET value = {new} WHERE key = {key}", ("3", "b"))
        listed = ", ".join(marks(conn.dialect, 2))
        sql = f"SELECT key, value FROM kv WHERE key IN ({listed}) ORDER BY key"
        return list(await conn.exec_driver_sql(sql, ("a", "b")))

    assert [tuple(r) for r in await store.db.write(job)] == [("a", "1"), ("b", "3")]
