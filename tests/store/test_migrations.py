"""Migrations: an empty database upgrades to exactly ``schema.metadata``; again is a no-op."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from simgate.store import Database, schema
from simgate.store import migrate as migrations

from ..conftest import PG_ADMIN_URL


@pytest.fixture
async def empty_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database with nothing in it (a fresh file, or a fresh PostgreSQL database)."""
    if backend.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"simgate_mig_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def _schema(conn: Connection) -> dict[str, dict[str, list[str]]]:
    insp = inspect(conn)
    out: dict[str, dict[str, list[str]]] = {}
    for name in insp.get_table_names():
        out[name] = {
            "columns": sorted(c["name"] for c in insp.get_columns(name)),
            "indexes": sorted(i["name"] or "" for i in insp.get_indexes(name)),
            "pk": sorted(insp.get_pk_constraint(name)["constrained_columns"]),
        }
    return out


async def test_upgrade_creates_metadata_and_is_idempotent(empty_url: str) -> None:
    db = Database(empty_url)
    await db.open()
    try:
        assert await migrations.current_revision(db) == "(empty)"
        await migrations.upgrade(db)
        revision = await migrations.current_revision(db)
        assert revision == ",".join(migrations.head_revisions())
        async with db.engine.connect() as conn:
            first = await conn.run_sync(_schema)
        await migrations.upgrade(db)  # a second run changes nothing
        assert await migrations.current_revision(db) == revision
        async with db.engine.connect() as conn:
            second = await conn.run_sync(_schema)
    finally:
        await db.close()
    assert first == second
    assert set(first) - {"alembic_version"} == set(schema.metadata.tables)
    for name, table in schema.metadata.tables.items():
        assert first[name]["columns"] == sorted(c.name for c in table.columns), name
        assert first[name]["pk"] == sorted(c.name for c in table.primary_key.columns), name
        declared = sorted(i.name or "" for i in table.indexes)
        # Every index the metadata declares exists (unique constraints may add more).
        assert set(declared) <= set(first[name]["indexes"]), name
