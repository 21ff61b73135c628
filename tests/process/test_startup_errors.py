"""A database that is locked or unreachable stops start-up with one line, not a traceback.

Start-up waits a bounded time for another process's SQLite write lock (the store's start-up
probe, 5 s; the running service's busy_timeout is 30 s) and for a PostgreSQL server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from simgate.testing.procs import free_port, simgate_command

pytestmark = pytest.mark.slow

# How the lock holder prepares the file: a database simgate created (WAL) or a fresh file in
# rollback-journal mode, where an exclusive lock blocks readers too.
HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[2] == "rollback":
    conn.execute("PRAGMA journal_mode=DELETE")
conn.execute("BEGIN EXCLUSIVE")
conn.execute("CREATE TABLE IF NOT EXISTS holder (x)")
print("locked", flush=True)
time.sleep(120)
"""


def _simgate(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    # The timeout only guards the suite against a hang; what is asserted is the output.
    done = subprocess.run(
        [*simgate_command(), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stderr


def _bare_env(**variables: str) -> dict[str, str]:
    """An environment of ``variables`` alone (no SIMGATE_* of the caller's), with the
    caller's PYTHONPATH: a worktree's src, when set, is the simgate under test."""
    return {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", ""), **variables}


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.mark.parametrize(("role", "journal_mode"), [("run", "wal"), ("worker", "rollback")])
def test_locked_sqlite_database_fails_start_with_one_line(
    tmp_path: Path, journal_mode: str, role: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = data / "simgate.db"
    if journal_mode == "wal":
        rc, err = _simgate(["--data-dir", str(data), "migrate"], tmp_path)
        assert rc == 0, err
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db), journal_mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        args = ["--data-dir", str(data), role]
        if role == "run":
            args += ["--port", str(free_port())]
        rc, err = _simgate(args, tmp_path)
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
    assert rc != 0
    line = _one_error_line(err)
    assert "locked" in line
    assert str(db) in line


@pytest.mark.parametrize("role", ["run", "worker"])
def test_unreachable_postgresql_fails_start_with_one_line(tmp_path: Path, role: str) -> None:
    # A port nobody listens on; the password must not appear in the message.
    url = f"postgresql+asyncpg://simgate:s3cret@127.0.0.1:{free_port()}/simgate"
    args = ["--data-dir", str(tmp_path / "data"), role]
    if role in ("run", "serve"):
        args += ["--port", str(free_port())]
    rc, err = _simgate(args, tmp_path, env=_bare_env(SIMGATE_DATABASE_URL=url))
    assert rc != 0
    line = _one_error_line(err)
    assert "cannot open database" in line
    assert "s3cret" not in err


@pytest.mark.parametrize("role", ["worker", "serve"])
def test_a_bad_dialect_section_fails_start_in_every_role(tmp_path: Path, role: str) -> None:
    # A worker never mounts the itniotech routes, yet checks their settings at start.
    args = ["--data-dir", str(tmp_path / "data"), role]
    if role == "serve":
        args += ["--port", str(free_port())]
    rc, err = _simgate(args, tmp_path, env=_bare_env(SIMGATE_ITNIO__PAGE_ROWS="0"))
    assert rc != 0
    line = _one_error_line(err)
    assert "invalid setting itnio.page_rows" in line


def test_a_bad_commit_setting_fails_start_with_one_line(tmp_path: Path) -> None:
    args = ["--data-dir", str(tmp_path / "data"), "run", "--port", str(free_port())]
    rc, err = _simgate(args, tmp_path, env=_bare_env(SIMGATE_COMMIT="memory"))
    assert rc != 0
    line = _one_error_line(err)
    assert "invalid setting commit" in line
    assert "'disk' or 'os'" in line
