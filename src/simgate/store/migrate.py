"""Schema migrations (Alembic), run programmatically on the open database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from simgate.store.database import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_current)


async def upgrade(db: Database) -> None:
    def _run(connection: Connection) -> None:
        command.upgrade(_config(connection), "head")

    # Alembic manages its own transaction; SQLite's write engine issues BEGIN IMMEDIATE.
    async with db.engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
