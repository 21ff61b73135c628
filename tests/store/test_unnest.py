"""store/unnest.py on PostgreSQL: a batch of rows as one statement of arrays writes exactly
what one statement per row would (issue 15: the dispatcher's record path)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from simgate.store.unnest import insert_rows
from tests.conftest import need_peer

pytestmark = pytest.mark.pg

COLS = (("id", "bigint"), ("state", "smallint"), ("ref", "text"))


@pytest.fixture
async def conn(pg_url: str | None) -> AsyncIterator[AsyncConnection]:
    """A connection with an empty temporary table ``t_unnest``, rolled back after the test."""
    need_peer("postgresql", pg_url is not None)
    assert pg_url is not None
    engine = create_async_engine(pg_url)
    try:
        async with engine.connect() as c:
            await c.exec_driver_sql(
                "CREATE TEMPORARY TABLE t_unnest (id bigint PRIMARY KEY, state smallint, "
                "ref text, n bigint NOT NULL DEFAULT 0)"
            )
            yield c
            await c.rollback()
    finally:
        await engine.dispose()


async def _rows(conn: AsyncConnection) -> list[tuple[object, ...]]:
    got = await conn.exec_driver_sql("SELECT id, state, ref, n FROM t_unnest ORDER BY id")
    return [tuple(r) for r in got.all()]


async def test_insert_writes_each_row_as_given(conn: AsyncConnection) -> None:
    await insert_rows(
        conn, "t_unnest", cols=COLS, rows=[(1, 0, "a"), (2, 0, None), (3, 0, "c'; --")]
    )
    assert await _rows(conn) == [
        (1, 0, "a", 0),
        (2, 0, None, 0),
        (3, 0, "c'; --", 0),  # values travel as bound arrays, never as SQL text
    ]


async def test_empty_batches_send_nothing(conn: AsyncConnection) -> None:
    await insert_rows(conn, "t_unnest", cols=COLS, rows=[])
    assert await _rows(conn) == []
