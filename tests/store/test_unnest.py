"""store/unnest.py on PostgreSQL: a batch of rows as one statement of arrays writes exactly
what one statement per row would (issue 15: the dispatcher's record path)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from simgate.store.unnest import insert_rows, update_rows
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


async def test_insert_then_update_by_id_with_fixed_values(conn: AsyncConnection) -> None:
    await insert_rows(
        conn, "t_unnest", cols=COLS, rows=[(1, 0, "a"), (2, 0, None), (3, 0, "c'; --")]
    )
    await update_rows(
        conn,
        "t_unnest",
        cols=(("id", "bigint"), ("state", "smallint")),
        rows=[(3, 5), (1, 7)],
        assignments=["state = v.state", "n = t.n + $1::bigint"],
        fixed=[10],
    )
    assert await _rows(conn) == [
        (1, 7, "a", 10),
        (2, 0, None, 0),  # not in the batch: untouched
        (3, 5, "c'; --", 10),  # values travel as bound arrays, never as SQL text
    ]


async def test_empty_batches_send_nothing(conn: AsyncConnection) -> None:
    await insert_rows(conn, "t_unnest", cols=COLS, rows=[])
    await update_rows(conn, "t_unnest", cols=COLS, rows=[], assignments=["state = 1"])
    assert await _rows(conn) == []
