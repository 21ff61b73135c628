"""The database on both backends: opening and closing, id blocks, a full storage (group
commit's lanes: tests/store/test_write_lanes.py)."""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.errors import StorageFull, StoreError
from simgate.secretbox import SecretBox
from simgate.services.container import Services
from simgate.store import Database, Store
from simgate.store import migrate as migrations
from simgate.store.database import is_storage_full
from tests.store.util import put_kv


async def test_id_blocks_unique_across_two_stores(
    services: Services, store: Store, backend: str
) -> None:
    """Two processes = two Store objects on one database: their ids never collide."""
    other_db = Database(backend)
    await other_db.open()
    try:
        other = Store(other_db, SecretBox("test-master-key-0123456789"))
        now = services.clock.now_ms()
        batches = await asyncio.gather(
            *(s.new_ids(n, now) for _ in range(3) for s, n in ((store, 4000), (other, 3500)))
        )
    finally:
        await other_db.close()
    ids = [i for b in batches for i in b]
    assert len(ids) == 3 * 7500
    assert len(set(ids)) == len(ids)
    assert all(len(str(i)) == 19 for i in ids)


async def test_new_ids_larger_than_a_block(services: Services, store: Store) -> None:
    now = services.clock.now_ms()
    first = await store.new_ids(25_000, now)
    second = await store.new_ids(3, now)
    assert len(set(first + second)) == 25_003
    assert max(first) < min(second)


async def test_closed_database_refuses_work(backend: str) -> None:
    db = Database(backend)
    with pytest.raises(StoreError, match="not open"):
        await db.write(put_kv("x", "y"))
    with pytest.raises(StoreError, match="not open"):
        async with db.read():
            pass


async def test_unreachable_database_is_one_clear_error() -> None:
    db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    with pytest.raises(StoreError, match="cannot open database") as info:
        await db.open()
    assert "\n" not in str(info.value)
    assert "nobody" not in str(info.value)  # credentials are redacted


async def test_first_id_block_reserved_by_two_processes_at_once(store: Store, backend: str) -> None:
    """Two processes reserving the first block of a new counter at the same moment."""
    a, b = Database(backend), Database(backend)
    await a.open()
    await b.open()
    repo = store.accounts
    held, release = asyncio.Event(), asyncio.Event()

    async def first(conn: AsyncConnection) -> int:
        start = await repo.reserve_block(conn, name="fresh", size=100)
        held.set()
        await release.wait()  # commit only after the other process has tried too
        return start

    try:
        task_a = asyncio.create_task(a.write(first))
        await asyncio.wait_for(held.wait(), 5)
        task_b = asyncio.create_task(
            b.write(functools.partial(repo.reserve_block, name="fresh", size=100))
        )
        await asyncio.sleep(0.2)  # let B reach the row A has not committed yet
        release.set()
        starts = sorted(await asyncio.wait_for(asyncio.gather(task_a, task_b), 10))
    finally:
        release.set()
        await a.close()
        await b.close()
    assert starts == [0, 100]


async def test_write_after_close_fails_instead_of_hanging(backend: str) -> None:
    db = Database(backend)
    await db.open()
    await db.close()
    with pytest.raises(StoreError, match="not open"):
        await asyncio.wait_for(db.write(put_kv("late", "v")), 5)


# ---- a full storage (issue 14 item 13) -----------------------------------------------------
class NoSpaceDisk:
    """A named fake for the one thing a unit test cannot make happen on demand: the operating
    system refusing a write with ENOSPC (the SQLite case is real in tests/api/test_app.py)."""

    def __init__(self) -> None:
        self.full = True

    def job(self, key: str) -> Any:
        async def write(conn: AsyncConnection) -> str:
            if self.full:
                raise OSError(errno.ENOSPC, "No space left on device")
            return str(await put_kv(key, "v")(conn))

        return write


async def test_a_write_without_room_is_storage_full_until_one_commits(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    disk = NoSpaceDisk()
    with caplog.at_level(logging.INFO, logger="simgate.store.database"):
        for i in range(5):
            with pytest.raises(StorageFull):
                await store.db.write(disk.job(f"k{i}"))
        assert store.db.storage_full
        disk.full = False
        assert await store.db.write(disk.job("after")) == "after"
    assert not store.db.storage_full
    lines = [r.getMessage() for r in caplog.records if r.name == "simgate.store.database"]
    assert len(lines) == 2, lines  # full, then room again: not one line per refused write
    assert "storage is full" in lines[0]
    assert "room again (5 transactions refused" in lines[1]


def test_storage_full_is_recognised_from_each_backend() -> None:
    assert is_storage_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_storage_full(sqlite3.OperationalError("database or disk is full"))
    pg = asyncpg.exceptions.DiskFullError("could not extend file: No space left on device")
    assert pg.sqlstate == "53100"
    wrapped = DBAPIError("INSERT ...", None, RuntimeError("adapter"))
    wrapped.__cause__ = pg
    assert is_storage_full(wrapped)
    assert not is_storage_full(sqlite3.OperationalError("database is locked"))
    assert not is_storage_full(OSError(errno.EACCES, "Permission denied"))


# ---- the database file's mode ---------------------------------------------------------------
@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common default umask, under which SQLite would create its files 0644."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_sqlite_database_and_its_wal_files_are_private(
    tmp_path: Path, umask_022: None
) -> None:
    """Like master.key and demo.json (0600): the database holds the sealed API secrets and
    the customers' messages."""
    path = tmp_path / "simgate.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.open()
    try:
        await migrations.upgrade(db)
        await db.write(put_kv("k", "v"))
        files = [path, path.with_name("simgate.db-wal"), path.with_name("simgate.db-shm")]
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        await db.close()


async def test_an_existing_database_keeps_its_mode_and_a_readable_one_is_said_once(
    tmp_path: Path, umask_022: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The operator's mode stays (a backup user may be meant to read it); world-readable is
    said once per process, not at every open."""
    readable, group = tmp_path / "readable.db", tmp_path / "group.db"
    for path, mode in ((readable, 0o644), (group, 0o640)):
        sqlite3.connect(path).close()
        path.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="simgate.store.database"):
        for path in (readable, readable, group):
            db = Database(f"sqlite+aiosqlite:///{path}")
            await db.open()
            await db.close()
    assert (_mode(readable), _mode(group)) == (0o644, 0o640)
    lines = [r.getMessage() for r in caplog.records if r.name == "simgate.store.database"]
    assert len(lines) == 1, lines
    assert f"{readable} is readable by every user" in lines[0]
    assert "(mode 0644)" in lines[0]
