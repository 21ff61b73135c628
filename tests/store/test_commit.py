"""The ``commit`` setting reaches every connection simgate writes through (issue 15).

"disk" (the default): SQLite ``synchronous=FULL``, PostgreSQL ``synchronous_commit=on``.
"os": SQLite ``synchronous=NORMAL`` in WAL mode, PostgreSQL ``synchronous_commit=off``
(store/sqlite_writer.py ``SYNCHRONOUS``, store/database.py ``_PG_COMMIT``). Read back from the
connections themselves, not from the settings.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store import Database
from simgate.store.sqlite_writer import WriterConnection, open_writer_connection
from tests.conftest import make_settings, opened

Commit = Literal["disk", "os"]  # sqlite_writer.Commit (not imported: old code must fail here)
# PRAGMA synchronous reads back as a number (https://www.sqlite.org/pragma.html).
FULL, NORMAL = 2, 1


def _sqlite_path(url: str) -> str:
    return url.split("///", 1)[1]


async def _setting(conn: AsyncConnection, sqlite: bool) -> object:
    sql = "PRAGMA synchronous" if sqlite else "SHOW synchronous_commit"
    return (await conn.exec_driver_sql(sql)).scalar_one()


async def _settings_of_every_connection(db: Database) -> dict[str, object]:
    """The setting as the writer, a pooled read (on SQLite the pool of
    Database._sqlite_engine) and, on PostgreSQL, a short read each see it."""

    async def job(conn: AsyncConnection) -> object:
        return await _setting(conn, db.is_sqlite)

    seen = {"write": await db.write(job)}
    async with db.read() as conn:
        seen["read"] = await _setting(conn, db.is_sqlite)
    if not db.is_sqlite:  # on SQLite short reads never write (store/loop_sqlite.py)
        async with db.read_short() as conn:
            seen["read_short"] = await _setting(conn, db.is_sqlite)
    return seen


@pytest.mark.parametrize(("commit", "expected"), [("disk", FULL), ("os", NORMAL)])
async def test_the_sqlite_writer_connection_syncs_as_the_setting_says(
    tmp_path: Path, commit: Commit, expected: int
) -> None:
    conn = open_writer_connection(str(tmp_path / "w.db"), busy_timeout_ms=1000, commit=commit)
    try:
        cur = conn.cursor()
        await cur.execute("PRAGMA synchronous")
        assert await cur.fetchone() == (expected,)
        await cur.execute("PRAGMA journal_mode")
        assert await cur.fetchone() == ("wal",)  # NORMAL is safe from corruption in WAL only
    finally:
        await conn.close()


@pytest.mark.parametrize("commit", ["disk", "os"])
async def test_the_setting_reaches_every_connection_of_a_runtime(
    backend: str, tmp_path: Path, commit: Commit
) -> None:
    """From the settings (``commit = "os"``) through Runtime to the pools' connections."""
    async with opened(make_settings(tmp_path, backend, commit=commit)) as rt:
        db = rt.store.db
        seen = await _settings_of_every_connection(db)
        if db.is_sqlite:
            async with db.engine.connect() as conn:  # the writer itself, as opened
                raw = await conn.get_raw_connection()
                assert isinstance(raw.driver_connection, WriterConnection)
            assert seen == dict.fromkeys(("write", "read"), NORMAL if commit == "os" else FULL)
        else:
            off = "off" if commit == "os" else "on"
            assert seen == dict.fromkeys(("write", "read", "read_short"), off)


@pytest.mark.parametrize(
    ("commit", "words"), [("os", ["commit = os", "loses nothing", "power cut"]), ("disk", [])]
)
async def test_start_says_what_commit_os_risks(
    sqlite_url: str, caplog: pytest.LogCaptureFixture, commit: Commit, words: list[str]
) -> None:
    db = Database(sqlite_url, commit=commit)
    with caplog.at_level(logging.INFO, logger="simgate.store.database"):
        await db.open()
    await db.close()
    said = [r.getMessage() for r in caplog.records if "commit = " in r.getMessage()]
    if not words:
        assert said == []  # the default says nothing
        return
    (line,) = said
    for word in words:
        assert word in line
