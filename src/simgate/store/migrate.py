"""Schema migrations (Alembic), run programmatically on the open database."""

from __future__ import annotations

import functools
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


# Areas (push outbox, each dialect) may add migrations as branches off a common base, so
# upgrades go to every head; a merge revision can join them when convenient.


@functools.cache
def head_revisions() -> tuple[str, ...]:
    # The scripts ship with the package, so their heads are fixed for the process.
    return tuple(sorted(ScriptDirectory.from_config(_config()).get_heads()))


def _current(connection: Connection) -> tuple[str, ...]:
    return tuple(sorted(MigrationContext.configure(connection).get_current_heads()))


async def current_revision(db: Database) -> str:
    async with db.engine.connect() as conn:
        return ",".join(await conn.run_sync(_current)) or "(empty)"


async def upgrade(db: Database) -> None:
    def _run(connection: Connection) -> None:
        # Every start and every CLI command comes here: a database already at the heads is
        # left alone without loading alembic's environment (most of a short command's time).
        if _current(connection) == head_revisions():
            return
        command.upgrade(_config(connection), "heads")

    # Alembic manages its own transaction; SQLite's write engine issues BEGIN IMMEDIATE.
    async with db.engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
