"""Connections to SQLite or PostgreSQL, and group commit for writes.

SQLite has one writer at a time, so writes go through one connection opened with
``BEGIN IMMEDIATE`` (the write lock is taken up front: a transaction that claims work never
fails half-way on a lock upgrade), ``synchronous=FULL`` (a commit survives power loss;
NORMAL when the operator chose ``commit = "os"``: ``sqlite_writer.SYNCHRONOUS``) and WAL
(readers never block the writer). On a SQLite file that connection runs its statements
on the event loop's thread and its COMMIT in a thread of its own (``store/sqlite_writer.py``:
one hand-off per batch; ``store/wal_flush.py`` has the kernel's fsync instead, off by
default). Reads use a separate pool; short reads
(:meth:`Database.read_short`) on SQLite use connections driven on the event loop's own
thread (``store/loop_sqlite.py``: no thread hop per statement).

Writes go through group commit, its lanes and writer tasks in ``store/write_lanes.py``:
this module gives them the transaction (a full storage said once, not per refused write),
run on the connections the writer holds across batches and retried on a deadlock or a busy
database by ``store/batch_connections.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import event, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from simgate.errors import StorageFull, StoreError
from simgate.store import driver_sql
from simgate.store.after_commit import after_commit
from simgate.store.batch_connections import BatchConnections, first_line, loop_writer_engine
from simgate.store.loop_sqlite import LoopConnection, open_loop_connection
from simgate.store.sqlite_writer import SYNCHRONOUS, Commit, WriteRefusal
from simgate.store.thread_reads import Statement, ThreadReads
from simgate.store.write_lanes import Job, WriteLanes

T = TypeVar("T")

log = logging.getLogger(__name__)

# How long start-up waits for another process's write lock before giving up with one line
# (busy_timeout, 30 s, is for the running service; a start-up should not hang that long).
STARTUP_LOCK_TIMEOUT_S = 5.0
# asyncpg waits 60 s for an unreachable host by default.
PG_CONNECT_TIMEOUT_S = 10.0
# PostgreSQL settings of simgate's connections for each ``commit`` (sqlite_writer.Commit).
# synchronous_commit=off: COMMIT returns before the WAL is flushed; a crash of the server
# may lose the last transactions (at most 3 x wal_writer_delay), "the database state will be
# just the same as if those transactions had been aborted cleanly" (PostgreSQL docs,
# runtime-config-wal.html#GUC-SYNCHRONOUS-COMMIT, wal-async-commit.html). A client killed
# after COMMIT returned loses nothing: the server has the transaction.
_PG_COMMIT: dict[Commit, dict[str, str]] = {"disk": {}, "os": {"synchronous_commit": "off"}}


SQLITE_FULL = 13
PG_DISK_FULL = "53100"  # SQLSTATE disk_full
_FULL_MARKERS = ("database or disk is full", "no space left on device")


def is_storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the storage has no room: SQLite's SQLITE_FULL,
    PostgreSQL's disk_full, or ENOSPC from the operating system."""
    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            return True
        if getattr(e, "sqlite_errorcode", None) == SQLITE_FULL:
            return True
        if PG_DISK_FULL in (getattr(e, "sqlstate", None), getattr(e, "pgcode", None)):
            return True
        if any(m in str(e).lower() for m in _FULL_MARKERS):
            return True
        todo += [x for x in (getattr(e, "orig", None), e.__cause__, e.__context__) if x]
    return False


def _log_commit(commit: Commit, *, sqlite: bool) -> None:
    """One line at start when the operator chose ``commit = "os"``: what it risks."""
    if commit == "disk":
        return
    when, lost = (
        ("the operating system has it (SQLite synchronous=NORMAL)", "a power cut or OS crash")
        if sqlite
        else (
            "the PostgreSQL server has it (synchronous_commit=off)",
            "a crash of the PostgreSQL server or of its machine",
        )
    )
    log.info(
        "commit = os: a write is answered once %s; a crash or kill -9 of simgate loses "
        "nothing, %s may lose the last commits already answered (never corruption)",
        when,
        lost,
    )


# The database files this process said are readable by every local user (once each).
_WARNED_READABLE: set[str] = set()


def _private_file(path: str) -> None:
    """Create the SQLite database file ``path`` with mode 0600 when it does not exist yet.

    It holds the API keys' hashes, the sealed API secrets, the customers' messages and
    numbers: like ``master.key`` and ``demo.json``, readable by simgate's user alone. SQLite
    would create it 0644 (less the umask); an empty file is an empty database to it, and it
    gives the ``-wal``, ``-shm`` and ``-journal`` files it creates the mode of the database
    file (its unix VFS, ``findCreateFileMode``), so those are private too. An existing file's
    mode is the operator's: left alone (:func:`_say_if_readable`)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    except OSError as exc:  # no such directory, not writable, ...: one line
        raise StoreError(f"cannot open database {path}: {exc.strerror or exc}") from None
    os.close(fd)


def _say_if_readable(path: str) -> None:
    """One line, once per process, when every local user can read the database file (one
    made by an earlier version, or by hand)."""
    if path in _WARNED_READABLE:
        return
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & stat.S_IROTH:
        _WARNED_READABLE.add(path)
        log.warning(
            "database file %s is readable by every user of this machine (mode %04o); "
            "simgate creates it 0600: chmod 600 %s* unless that is meant",
            path,
            stat.S_IMODE(mode),
            path,
        )


class Database:
    def __init__(
        self,
        url: str,
        *,
        busy_timeout_ms: int = 30_000,
        commit: Commit = "disk",
        flush_by_kernel: bool = False,
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._busy_timeout_ms = busy_timeout_ms
        self.commit: Commit = commit  # settings ``commit``: when a write is committed (open)
        self._write_engine: AsyncEngine | None = None
        self._read_engine: AsyncEngine | None = None
        self._lanes: WriteLanes | None = None
        # The connections the writer holds across batches and each batch's attempts on
        # them (store/batch_connections.py).
        self._batch: BatchConnections | None = None
        # SQLite files only: short reads on the event loop's thread (read_short).
        self._loop_engine: AsyncEngine | None = None
        # PostgreSQL: the same pool in autocommit for read_short (one round trip, not three).
        self._autocommit_engine: AsyncEngine | None = None
        # SQLite files only: whole reads in one call, on the loop or a worker thread (fetch).
        self._thread_reads: ThreadReads | None = None
        # Set by a write the storage had no room for, cleared by the next one that commits:
        # /healthz reports it (services/health.py).
        self.storage_full = False
        self._full_refusals = 0
        # SQLite files: set once the disk failed to flush the WAL (store/wal_flush.py);
        # every write is refused from then on, and /healthz says so (services/health.py).
        self.write_refusal = WriteRefusal()
        # SQLite files, commit = "disk": the WAL's fsync by the kernel instead of FULL in a
        # thread (store/wal_flush.py; off by default, its docstring says why).
        self._flush_by_kernel = flush_by_kernel

    # ---- lifecycle -------------------------------------------------------------------
    async def open(self) -> None:
        loop_writer: AsyncEngine | None = None
        if self.is_sqlite:
            await asyncio.to_thread(self._probe_sqlite_lock)
            loop_writer = self._loop_writer_engine()
            self._write_engine = loop_writer or self._sqlite_engine(immediate=True, pool_size=1)
            self._read_engine = self._sqlite_engine(immediate=False, pool_size=4)
            self._loop_engine = self._loop_sqlite_engine()
            self._thread_reads = self._sqlite_thread_reads()
        else:
            engine = create_async_engine(
                self.url,
                pool_size=8,
                max_overflow=8,
                connect_args={
                    "timeout": PG_CONNECT_TIMEOUT_S,
                    "server_settings": {
                        # asyncpg prepares every statement; after five runs PostgreSQL may
                        # switch to a generic plan made from the stats of a young table, which
                        # turned the part lookup by line_ref into a scan growing with the
                        # table (bench/).
                        "plan_cache_mode": "force_custom_plan",
                        **_PG_COMMIT[self.commit],
                    },
                },
            )
            self._write_engine = self._read_engine = engine
            self._autocommit_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        _log_commit(self.commit, sqlite=self.is_sqlite)
        try:
            async with self._read_engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except (OperationalError, OSError, DBAPIError) as exc:
            await self.close()
            raise StoreError(
                f"cannot open database {self._redacted()}: {first_line(exc)}"
            ) from None
        self._lanes = WriteLanes(self._transaction, one_writer=self.is_sqlite)
        # Before the writer tasks first run (they start at the next await), on this loop.
        self._batch = BatchConnections(
            self.engine,
            autocommit_engine=self._autocommit_engine,
            held_writer=loop_writer is not None,  # SQLite file: one writer, held
            pg_lanes=None if self.is_sqlite else self._lanes,
        )

    async def close(self) -> None:
        if self._lanes is not None:  # queued and running writes fail, later ones are refused
            await self._lanes.close()
        self._lanes = None
        if self._batch is not None:  # its held connections back to the pool
            await self._batch.close()
        engines = {
            id(e): e
            for e in (self._write_engine, self._read_engine, self._loop_engine)
            if e is not None
        }
        for engine in engines.values():
            await engine.dispose()
        reads, self._thread_reads = self._thread_reads, None
        if reads is not None:
            await reads.close()
        self._write_engine = self._read_engine = self._loop_engine = None
        self._autocommit_engine = None  # a view of the read pool, disposed with it
        self._batch = None

    def _probe_sqlite_lock(self) -> None:
        """Fail fast, with one line, when another process holds the database's write lock.
        A database file simgate creates is created here first, private (:func:`_private_file`)."""
        path = make_url(self.url).database
        if not path or path == ":memory:" or path.startswith("file:"):
            return
        _private_file(path)
        try:
            conn = sqlite3.connect(path, timeout=STARTUP_LOCK_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from None
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise StoreError(f"cannot open database {path}: {exc}") from None
            raise StoreError(
                f"database {path} is locked by another process "
                f"(waited {STARTUP_LOCK_TIMEOUT_S:g} s)"
            ) from None
        finally:
            conn.close()
        # Once it opens: a start that fails says why in one line, and no more.
        _say_if_readable(path)

    def _sqlite_engine(self, *, immediate: bool, pool_size: int) -> AsyncEngine:
        engine = create_async_engine(
            self.url,
            pool_size=pool_size,
            max_overflow=0,
            connect_args={"timeout": self._busy_timeout_ms / 1000, "check_same_thread": False},
        )
        busy = self._busy_timeout_ms
        synchronous = SYNCHRONOUS[self.commit]

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own BEGIN is
            # deferred, which can fail with SQLITE_BUSY on the first write).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute(f"PRAGMA busy_timeout={int(busy)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        begin_sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql(begin_sql)

        return engine

    def _loop_writer_engine(self) -> AsyncEngine | None:
        """The write connection driven on the event loop's thread, its COMMIT in a thread of
        its own (store/batch_connections.py); None for an in-memory or URI database
        (aiosqlite then, as before)."""
        path = make_url(self.url).database
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        return loop_writer_engine(
            self.url,
            path,
            busy_timeout_ms=self._busy_timeout_ms,
            commit=self.commit,
            refusal=self.write_refusal,
            flush_by_kernel=self._flush_by_kernel,
        )

    def _loop_sqlite_engine(self) -> AsyncEngine | None:
        """Connections for :meth:`read_short`; None for an in-memory or URI database (each
        connection would see a database of its own)."""
        path = make_url(self.url).database
        if not path or path == ":memory:" or path.startswith("file:"):
            return None

        async def connect() -> LoopConnection:
            return open_loop_connection(path)

        # Several: a short read may await something else while it holds its connection.
        engine = create_async_engine(self.url, async_creator=connect, pool_size=4, max_overflow=4)

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.connection.driver_connection.begin()  # one snapshot for the whole read

        return engine

    def _sqlite_thread_reads(self) -> ThreadReads | None:
        """The connections of :meth:`fetch`; None for an in-memory or URI database."""
        path = make_url(self.url).database
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        return ThreadReads(path, busy_timeout_ms=self._busy_timeout_ms)

    def _redacted(self) -> str:
        if "@" in self.url:
            scheme, rest = self.url.split("://", 1)
            return f"{scheme}://***@{rest.split('@', 1)[1]}"
        return self.url

    @property
    def engine(self) -> AsyncEngine:
        if self._write_engine is None:
            raise StoreError("database is not open")
        return self._write_engine

    # ---- reads -----------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        if self._read_engine is None:
            raise StoreError("database is not open")
        async with self._read_engine.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def read_short(self) -> AsyncIterator[AsyncConnection]:
        """A connection for a short indexed read (a key, an app, a user, an account: a few
        rows by an index). On SQLite it runs on the event loop's thread, holding the loop
        for the read (tens of microseconds instead of four thread hops). On PostgreSQL it
        runs in autocommit: no BEGIN and ROLLBACK round trips around the query, and no
        loss either, as READ COMMITTED takes a snapshot per statement anyway. Scans and
        pages go through :meth:`read`, never here."""
        if self._autocommit_engine is not None:
            async with self._autocommit_engine.connect() as pg_conn:
                yield pg_conn
            return
        if self._loop_engine is None:
            async with self.read() as conn:
                yield conn
            return
        # Not ``async with``: its exit closes through a shielded task (three loop turns);
        # here every step completes without suspending, so nothing can interrupt close().
        conn = await self._loop_engine.connect()
        try:
            yield conn
        finally:
            await conn.close()

    async def fetch(self, statements: Sequence[Statement]) -> list[list[Any]]:
        """The rows of each ``(sql, params)``, in one call; SQL with ``?`` marks.

        For report and page queries (issue 15 "reads"). On a SQLite file the whole read is
        one plain sqlite3 call, in one snapshot (store/thread_reads.py): on the event loop's
        thread when it fits a 1 ms budget, else in a worker thread; not a thread hop per
        statement and fetch. Rows are plain tuples. On PostgreSQL the marks become ``$1,
        $2, ...`` and the statements run on the pool: one in autocommit (one round trip),
        several in one transaction (READ COMMITTED, as the pooled reads).
        """
        if self._thread_reads is not None:
            return await self._thread_reads.fetch(statements)
        if self._autocommit_engine is not None:
            todo = [(numbered_marks(sql), tuple(params)) for sql, params in statements]
            engine = self._autocommit_engine if len(todo) == 1 else self.engine
            async with engine.connect() as pg_conn:
                # Straight on asyncpg (store/driver_sql.py): one statement in autocommit;
                # of several, the first begins their transaction through SQLAlchemy and
                # the others run straight in it.
                return [list(await driver_sql.fetch(pg_conn, sql, p)) for sql, p in todo]
        async with self.read() as conn:
            return [list(await conn.exec_driver_sql(sql, tuple(p))) for sql, p in statements]

    # ---- writes ----------------------------------------------------------------------
    async def write(
        self, job: Callable[[AsyncConnection], Awaitable[T]], *, urgent: bool = False
    ) -> T:
        """Run ``job`` in a transaction shared with concurrent writers; return after commit.
        ``urgent``: a request is waiting for it (see the module docstring's lanes)."""
        return await self.submit(job, urgent=urgent)

    def submit(
        self,
        job: Callable[[AsyncConnection], Awaitable[T]],
        *,
        urgent: bool = False,
        autocommit: bool = False,
    ) -> asyncio.Future[T]:
        """:meth:`write` without waiting: ``job`` is queued before the caller yields, and the
        future resolves after the commit. For a writer that hands one job's future to many
        waiting requests (services/gather.py): a task in between would queue the job one
        loop turn later, behind whatever the writer takes meanwhile.

        ``autocommit``: on PostgreSQL the job runs alone on a connection in autocommit,
        outside the shared transaction, so it must be one statement (atomic by itself, and
        so safe to re-run after an error). Its BEGIN and COMMIT are two round trips fewer:
        an accept batch written as one statement is one round trip in all (issue 15,
        services/accept_writer.py). On SQLite it joins the shared transaction as any job."""
        if self._lanes is None:
            raise StoreError("database is not open")
        return self._lanes.submit(job, urgent=urgent, own_commit=autocommit and not self.is_sqlite)

    async def _transaction(
        self, jobs: list[Job], attempts: int = 5, *, autocommit: bool = False
    ) -> list[Any]:
        try:
            if self._batch is None:
                raise StoreError("database is not open")
            results = await self._batch.run(jobs, attempts, autocommit=autocommit)
        except Exception as exc:
            if not is_storage_full(exc):
                raise
            self._full(exc)
            raise StorageFull() from exc
        if self.storage_full:
            log.warning(
                "database storage has room again (%d transactions refused meanwhile)",
                self._full_refusals,
            )
            self.storage_full, self._full_refusals = False, 0
        return results

    def _full(self, exc: BaseException) -> None:
        """One line when the storage fills up, not one per refused write (issue 14 #10)."""
        if not self.storage_full:
            log.error("database storage is full, writes are refused: %s", first_line(exc))
        self.storage_full = True
        self._full_refusals += 1

    def after_commit(self, conn: AsyncConnection, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the write transaction of ``conn`` (a job's) has committed;
        never if it fails or rolls back (store/after_commit.py)."""
        after_commit(conn, callback)

    async def write_direct(self, job: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """A transaction of its own, outside group commit (migrations, bulk maintenance)."""
        (result,) = await self._transaction([job])
        return result  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=512)
def numbered_marks(sql: str) -> str:
    """``?`` marks as asyncpg's ``$1, $2, ...`` (no ``?`` in our SQL but the marks)."""
    parts = sql.split("?")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], start=1):
        out.append(f"${i}{part}")
    return "".join(out)
