"""The write batch's transaction attempts, on the connections the writer tasks hold.

Group commit (store/write_lanes.py) hands each batch to the database (store/database.py),
which runs it here: in one transaction, retried on a deadlock or a busy database.

On a SQLite file the writer holds its connection across batches and runs each batch's
BEGIN IMMEDIATE and COMMIT straight on the write connection, as the statements already are
(``store/driver_sql.py``), telling SQLAlchemy's connection of the transaction without a
round through its pool and greenlet: a pool checkout per batch (its weakref finalizer, the
reset on return), ``conn.begin()`` and the commit through the adapter were ~40 % of the
loop's CPU of a one-number send (issue 15, py-spy of ``simgate run`` under wrk). On
PostgreSQL each writer task of the lanes holds its connections across batches too (one in
a transaction, one in autocommit): no pool checkout and reset per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import await_

from simgate.store.after_commit import AfterCommit, collecting
from simgate.store.sqlite_writer import (
    Commit,
    WriterConnection,
    WriteRefusal,
    open_writer_connection,
)
from simgate.store.write_lanes import Job, WriteLanes

log = logging.getLogger(__name__)

_RETRYABLE_MARKERS = ("deadlock detected", "could not serialize", "database is locked")


def _is_retryable(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, DBAPIError) and any(m in text for m in _RETRYABLE_MARKERS)


def loop_writer_engine(
    url: str,
    path: str,
    *,
    busy_timeout_ms: int,
    commit: Commit,
    refusal: WriteRefusal,
    flush_by_kernel: bool = False,
) -> AsyncEngine:
    """The engine of the SQLite file ``path``'s write connection, driven on the event loop's
    thread, its fsync by the kernel or its COMMIT in a thread of its own
    (store/sqlite_writer.py: statements on the loop, no hand-off per statement). ``refusal``:
    set once a flush failed, for every connection of the engine (store/wal_flush.py)."""
    busy = busy_timeout_ms

    async def connect() -> WriterConnection:
        return await asyncio.to_thread(
            open_writer_connection,
            path,
            busy_timeout_ms=busy,
            commit=commit,
            refusal=refusal,
            flush_by_kernel=flush_by_kernel,
        )

    # One held by the writer (_held_attempt); one more for who asks the engine itself
    # (migrations): SQLite's write lock and the turn (store/sqlite_turn.py) keep them
    # one at a time, and the held one holds neither between batches.
    engine = create_async_engine(url, async_creator=connect, pool_size=1, max_overflow=1)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Straight on sqlite3, not through SQLAlchemy's execution path; waits in the
        # writer's thread only when another process holds the lock. Already open when
        # the writer began it itself (_held_attempt).
        driver = conn.connection.driver_connection
        if not driver.in_transaction:
            await_(driver.begin_immediate())

    # A COMMIT or ROLLBACK with no transaction open and nothing in the writer's thread
    # does nothing in SQLite: skipped, so the writer can tell SQLAlchemy its transaction
    # ended without a greenlet round through the adapter, and the pool's reset on
    # return costs nothing. Everything else goes through as before.
    dialect = engine.sync_engine.dialect
    plain_commit, plain_rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: PoolProxiedConnection) -> None:
        if not _idle_writer(dbapi_connection):
            plain_commit(dbapi_connection)

    def do_rollback(dbapi_connection: PoolProxiedConnection) -> None:
        if not _idle_writer(dbapi_connection):
            plain_rollback(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]
    return engine


def _idle_writer(dbapi_connection: PoolProxiedConnection) -> bool:
    """Whether ``dbapi_connection`` is simgate's SQLite write connection with no
    transaction open and nothing running in its thread."""
    driver = dbapi_connection.driver_connection
    return isinstance(driver, WriterConnection) and driver.idle()


class BatchConnections:
    """The connections the writer holds across batches, and each batch's attempts on them.

    Made by :meth:`Database.open <simgate.store.database.Database.open>` on its loop, once
    its engines and lanes are; :meth:`close` gives the held connections back."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        autocommit_engine: AsyncEngine | None,
        held_writer: bool,
        pg_lanes: WriteLanes | None,
    ) -> None:
        self._engine = engine  # the write engine
        # PostgreSQL: the same pool in autocommit.
        self._autocommit_engine = autocommit_engine
        # SQLite files: the writer's connection, held across batches (_held_attempt), and
        # the lock that lets write_direct take a turn on it beside the writer lane.
        self._held_writer = held_writer
        self._held: AsyncConnection | None = None
        self._held_lock = asyncio.Lock()  # of the loop that opens the database
        # PostgreSQL: each writer task's connections (in a transaction, in autocommit),
        # held across its batches (_lane_attempt); the writer tasks are those of pg_lanes.
        self._pg_lanes = pg_lanes
        self._lane_conns: dict[tuple[asyncio.Task[Any] | None, bool], AsyncConnection] = {}

    async def close(self) -> None:
        """The held connections back to the pool, which the engine's dispose() closes."""
        held = [self._held, *self._lane_conns.values()]
        self._held = None
        self._lane_conns.clear()
        for conn in held:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def run(self, jobs: list[Job], attempts: int, *, autocommit: bool = False) -> list[Any]:
        """``jobs``' results, run in one transaction that committed, tried up to ``attempts``
        times on a deadlock or a busy database; their after-commit callbacks have run."""
        for attempt in range(attempts):
            try:
                if self._held_writer:  # SQLite file: one writer, no autocommit jobs
                    results, hooks = await self._held_attempt(jobs)
                elif self._pg_writer():
                    results, hooks = await self._lane_attempt(jobs, autocommit=autocommit)
                elif autocommit and self._autocommit_engine is not None:
                    # One statement (submit's contract): it commits as it returns.
                    async with self._autocommit_engine.connect() as conn:
                        with collecting(conn) as hooks:
                            results = [await job(conn) for job in jobs]
                else:
                    async with self._engine.begin() as conn:
                        with collecting(conn) as hooks:
                            results = [await job(conn) for job in jobs]
                hooks.run()  # committed (store/after_commit.py)
                return results
            except DBAPIError as exc:
                if not _is_retryable(exc) or attempt == attempts - 1:
                    raise
                log.warning("retrying write after %s", first_line(exc))
                await asyncio.sleep(0.01 * (2**attempt))
        raise AssertionError("unreachable")

    async def _held_attempt(self, jobs: list[Job]) -> tuple[list[Any], AfterCommit]:
        """One attempt of ``jobs`` in a transaction on the writer's held connection (SQLite
        file): BEGIN IMMEDIATE and COMMIT straight on the write connection, SQLAlchemy's
        connection told of both (its begin event and the dialect's commit find nothing
        left to do: :func:`loop_writer_engine`). A connection that failed is rolled back
        and kept, or, invalidated or cancelled, replaced by the next attempt."""
        async with self._held_lock:
            conn = self._held
            if conn is None or conn.closed or conn.invalidated:
                conn = self._held = await self._engine.connect()
            sync = conn.sync_connection
            assert sync is not None  # connected just above or still open
            writer = sync.connection.driver_connection
            assert isinstance(writer, WriterConnection)
            # A busy timeout raises sqlite3's error as the begin event did (not retried).
            await writer.begin_immediate()
            try:
                sync.begin()  # the begin event finds the transaction open
                with collecting(conn) as hooks:
                    results = [await job(conn) for job in jobs]
                try:
                    await writer.commit()
                except sqlite3.Error as exc:  # as SQLAlchemy's commit raised it (retries)
                    raise DBAPIError.instance(
                        "COMMIT", (), exc, sqlite3.Error, dialect=conn.dialect
                    ) from exc
                sync.commit()  # the dialect finds nothing open to commit
            except BaseException as exc:
                await self._after_failure(conn, cancelled=not isinstance(exc, Exception))
                raise
            return results, hooks

    def _pg_writer(self) -> bool:
        """Whether a PostgreSQL writer task of the lanes runs this (write_direct's callers
        take a pooled connection, as before)."""
        lanes = self._pg_lanes
        return lanes is not None and asyncio.current_task() in lanes.writers

    async def _lane_attempt(
        self, jobs: list[Job], *, autocommit: bool
    ) -> tuple[list[Any], AfterCommit]:
        """One attempt of ``jobs`` by a PostgreSQL writer task, on the connection it holds
        across batches (one in a transaction, one in autocommit): no pool checkout and
        reset per batch. A failed connection is rolled back or replaced
        (:meth:`_after_failure`)."""
        key = (asyncio.current_task(), autocommit)
        conn = self._lane_conns.get(key)
        if conn is None or conn.closed or conn.invalidated:
            engine = self._autocommit_engine if autocommit else self._engine
            assert engine is not None
            conn = self._lane_conns[key] = await engine.connect()
        try:
            if not autocommit:
                # Begun as engine.begin() began it (the adapter sends BEGIN at the first
                # statement): statements then run straight on asyncpg (store/driver_sql.py).
                sync = conn.sync_connection
                assert sync is not None  # connected just above or still open
                sync.begin()
            with collecting(conn) as hooks:
                results = [await job(conn) for job in jobs]
            if autocommit:
                # Each statement committed as it ran; SQLAlchemy's autobegun bookkeeping
                # ends as the pool's reset on return ended it: a ROLLBACK the adapter does
                # not send (no transaction open), and no commit event.
                if conn.in_transaction():
                    await conn.rollback()
            else:
                await conn.commit()
        except BaseException as exc:
            await self._after_failure(conn, cancelled=not isinstance(exc, Exception))
            raise
        return results, hooks

    async def _after_failure(self, conn: AsyncConnection, *, cancelled: bool) -> None:
        """Roll back a failed attempt on the held connection, keeping it for the next one;
        replace it instead when it was invalidated, its rollback failed, or the attempt was
        cancelled (a statement or commit may still run in its thread: the close waits
        behind it, store/sqlite_writer.py). Never raises: the attempt's error is the one
        its callers must hear."""
        if not cancelled and not conn.invalidated:
            try:
                await conn.rollback()
            except Exception:
                log.debug("rollback of a failed write failed", exc_info=True)
            else:
                if not conn.invalidated:
                    return
        if self._held is conn:
            self._held = None
        try:
            await conn.invalidate()
            await conn.close()  # its pool slot back (the connection itself is gone)
        except Exception:
            log.debug("closing a failed write connection failed", exc_info=True)


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (the driver's, when SQLAlchemy wraps one)."""
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
