"""Shared fixtures: backends (SQLite always, PostgreSQL when reachable; required in CI)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.settings import Settings, load_settings
from simgate.store import Database, Store
from simgate.store import migrate as migrations
from simgate.testing.clock import FakeClock
from tests.support.cli import Cli, invoker
from tests.support.pg import truncate_pg
from tests.support.sqlite import copy_template

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get(
    "SIMGATE_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)

# Hypothesis profiles: "default" (100 examples a property, as Hypothesis ships) for CI and
# scripts/test; "fast" (a tenth) for the edit-test loop, scripts/test --fast. Properties
# that ask for another count scale with it through tests/support/examples.py.
hypothesis_settings.register_profile("fast", max_examples=10)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that open a database (through ``backend``) carry the ``db`` marker: the unit
    slice (``scripts/test --fast``) is everything else."""
    for item in items:
        if "backend" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


def need_peer(name: str, available: bool, reason: str = "") -> None:
    """Skip a test whose external peer is missing, except in CI where that is a failure."""
    if available:
        return
    message = f"peer {name} is not available{': ' + reason if reason else ''}"
    if IN_CI:
        pytest.fail(message + " (CI=true: missing peers fail)")
    pytest.skip(message)


async def _pg_reachable() -> str | None:
    engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str | None]:
    """A fresh PostgreSQL database for this test session (dropped at the end), or None."""
    problem = asyncio.run(_pg_reachable())
    if problem is not None:
        yield None
        return
    name = f"simgate_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session; each test gets a copy (migrating a fresh
    file costs more than most tests)."""
    path = tmp_path_factory.mktemp("template") / "simgate.db"

    async def build() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.open()
        try:
            await migrations.upgrade(db)
        finally:
            await db.close()

    asyncio.run(build())
    return path


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def backend(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """Database URL for each backend; the contract tests run once per backend.

    The PostgreSQL case carries the ``pg`` marker (``-m "not pg"`` deselects it) and asks for
    the session database only when it runs, so a SQLite-only run never connects to a server.
    """
    if request.param == "sqlite":
        return copy_template(sqlite_template, tmp_path / "simgate.db")
    pg_url: str | None = request.getfixturevalue("pg_url")
    need_peer("postgresql", pg_url is not None, PG_ADMIN_URL)
    assert pg_url is not None
    return pg_url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated SQLite database of this test's own, for tests where the backend makes no
    difference (not marked ``db``: the unit slice runs them)."""
    return copy_template(sqlite_template, tmp_path / "simgate.db")


def make_settings(tmp_path: Path, url: str, **extra: Any) -> Settings:
    data: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "database_url": url,
        "master_key": "test-master-key-0123456789",
        "demo": {"create": False},
    }
    data.update(extra)
    return load_settings(None, overrides=data)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(runtime: Runtime) -> Store:
    """The runtime's store, for tests that arrange or inspect rows below the services."""
    return runtime.store


@contextlib.asynccontextmanager
async def opened(
    settings: Settings, *, clock: FakeClock | None = None, migrate: bool = True
) -> AsyncIterator[Runtime]:
    """An admin runtime on ``settings`` (its own fake clock unless given), open for the
    block: a process of its own on the database (an API process, the CLI)."""
    rt = Runtime(settings, role="admin", clock=clock or FakeClock())
    await rt.open(migrate=migrate)
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
async def runtime(backend: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Runtime]:
    if backend.startswith("postgresql"):
        await truncate_pg(backend)
    async with opened(make_settings(tmp_path, backend), clock=clock) as rt:
        yield rt


@pytest.fixture
async def app(sqlite_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The HTTP app of an admin runtime on a SQLite database of the test's own (routing and
    the HTTP edge: the backend makes no difference)."""
    async with opened(make_settings(tmp_path, sqlite_url)) as rt:
        yield rt.app()


@pytest.fixture
def services(runtime: Runtime) -> Services:
    assert runtime.services is not None
    return runtime.services


def have(program: str) -> bool:
    return shutil.which(program) is not None


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The operator CLI in-process, one fresh data directory per test (tests/support/cli.py)."""
    return invoker(tmp_path, monkeypatch)
