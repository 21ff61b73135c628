"""Per-test SQLite databases copied from the session's migrated template.

Migrating a fresh file costs more than most tests (about 100 ms of alembic per file), so
tests that want their own SQLite database copy the one ``sqlite_template`` migrated once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SUFFIXES = ("", "-wal", "-shm")


def copy_template(template: Path, dest: Path) -> str:
    """Copy the migrated ``template`` (with its WAL files) to ``dest``; its database URL."""
    for suffix in SUFFIXES:
        source = template.with_name(template.name + suffix)
        if source.exists():
            # copy, not copyfile: the mode too (simgate makes its database files 0600).
            shutil.copy(source, dest.with_name(dest.name + suffix))
    return f"sqlite+aiosqlite:///{dest}"
