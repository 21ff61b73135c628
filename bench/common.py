"""What every benchmark shares: settings for a scratch database, tables, timing."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from simgate.domain.accounts import Account
from simgate.domain.messages import FINAL, State
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.services.sending import Recipient, SendRequest
from simgate.settings import Settings, load_settings
from simgate.store import Store
from simgate.store.tables import messages

PG_ADMIN_URL = os.environ.get(
    "SIMGATE_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


@dataclass
class Table:
    title: str
    columns: Sequence[str]
    rows: list[Sequence[Any]]
    note: str = ""

    def render(self) -> str:
        cells = [[_fmt(c) for c in row] for row in self.rows]
        widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(self.columns)]
        line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
        out = [self.title, line]
        out.append(
            "| " + " | ".join(h.ljust(w) for h, w in zip(self.columns, widths, strict=True)) + " |"
        )
        out.append(line)
        for row in cells:
            out.append(
                "| "
                + " | ".join(
                    c.rjust(w) if i else c.ljust(w)
                    for i, (c, w) in enumerate(zip(row, widths, strict=True))
                )
                + " |"
            )
        out.append(line)
        if self.note:
            out.append(self.note)
        return "\n".join(out)


def plain_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """``rows`` under ``header`` in left-aligned columns, ``title`` above (the standalone
    scripts' tables; :class:`Table` is bench/run.py's)."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join("-" * w for w in widths)
    out = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


async def pg_reachable() -> bool:
    engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        await engine.dispose()


async def _pg_admin(sql: str) -> None:
    engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@asynccontextmanager
async def scratch_url(backend: str, workdir: Path) -> AsyncIterator[str]:
    """A fresh, empty database for one measurement (dropped afterwards on PostgreSQL)."""
    if backend == "sqlite":
        await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
        yield f"sqlite+aiosqlite:///{workdir / 'simgate.db'}"
        return
    name = f"simgate_bench_{uuid.uuid4().hex[:10]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_settings(workdir: Path, url: str, **extra: Any) -> Settings:
    data: dict[str, Any] = {
        "data_dir": str(workdir / "data"),
        "database_url": url,
        "master_key": "bench-master-key-0123456789",
        "log_level": "warning",
        "demo": {"create": False},
    }
    data.update(extra)
    return load_settings(None, overrides=data)


@asynccontextmanager
async def opened(settings: Settings, role: str = "admin") -> AsyncIterator[Runtime]:
    rt = Runtime(settings, role=role)  # type: ignore[arg-type]
    await rt.open()
    try:
        yield rt
    finally:
        await rt.close()


def recipients(first: int, count: int) -> list[Recipient]:
    return [Recipient(f"86138{i % 100_000_000:08d}") for i in range(first, first + count)]


async def enqueue(
    sv: Services, account: Account, count: int, batch: int = 1000, *, dialect: str = "bench"
) -> list[int]:
    ids: list[int] = []
    for first in range(0, count, batch):
        n = min(batch, count - first)
        out = await sv.sending.send(
            SendRequest(
                account=account, dialect=dialect, text="bench", recipients=recipients(first, n)
            )
        )
        ids.extend(a.message_id for a in out.accepted)
    return ids


async def wait_state(store: Store, state: State, count: int, limit_s: float) -> float:
    """Seconds from the call until ``count`` messages were in ``state``, a final one.

    Polled every 0.5 s, but the answer is not rounded up to a poll: it ends at the last of
    the rows' ``updated_ms`` (the worker's clock as it wrote the state, which is the system
    clock in the benches). Rounded up to a poll, 5,000 messages (``--quick``) took 0.5 s or
    1.0 s whatever the dispatcher did (never above 10,000 msg/s; measured 0.47-0.61 s).

    A poll does not count the table (a scan, in the process under measurement or on its
    database server): :class:`Settled` moves a mark up the primary key. While the table holds
    just the messages awaited (the benches' scratch databases) that is exact; with more rows
    the mark may lag a full count, so then each poll counts, and the time is the poll's."""
    if state not in FINAL:
        raise ValueError(f"{state.name} is not final: rows leave it, the mark would overcount")
    start = time.perf_counter()
    start_ms = time.time_ns() // 1_000_000
    settled = Settled(state)
    async with store.db.read() as conn:
        total = int(await conn.scalar(select(func.count()).select_from(messages)) or 0)
    while True:
        async with store.db.read() as conn:
            if total > count:
                n = (await store.messages.counts_by_state(conn)).get(state, 0)
            else:
                n = await settled.advance(conn)
        if n >= count:
            if total <= count and settled.last_ms is not None and settled.last_ms > start_ms:
                return (settled.last_ms - start_ms) / 1000
            return time.perf_counter() - start  # a full count, or all there before the call
        if time.perf_counter() - start > limit_s:
            raise TimeoutError(f"{n}/{count} {state.name} after {limit_s} s")
        await asyncio.sleep(0.5)


class Settled:
    """How many messages, from the lowest id up, are in a final ``state``: every row at or
    below ``mark`` is, and stays so; each :meth:`advance` reads only the rows it passes
    (primary key ranges), so a whole run reads each row about twice. Rows in ``state`` above
    the first one not yet in it are not counted until the mark passes them. Assumes no rows
    are added below the mark meanwhile. ``last_ms``: the latest ``updated_ms`` passed."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.mark = 0  # ids are positive
        self.count = 0
        self.last_ms: int | None = None

    async def advance(self, conn: AsyncConnection) -> int:
        ids = messages.c.id
        first_not = await conn.scalar(
            select(ids)
            .where(ids > self.mark, messages.c.state != int(self.state))
            .order_by(ids)
            .limit(1)
        )
        passed = select(func.count(), func.max(ids), func.max(messages.c.updated_ms))
        passed = passed.where(ids > self.mark)
        if first_not is not None:
            passed = passed.where(ids < first_not)
        n, top, last_ms = (await conn.execute(passed)).one()
        self.count += int(n)
        if top is not None:
            self.mark = int(top)
        if last_ms is not None:
            self.last_ms = max(int(last_ms), self.last_ms or 0)
        return self.count


GATEWAY_USER, GATEWAY_PASSWORD = "bench", "bench-password"


def server_settings_data(workdir: Path, url: str, port: int) -> dict[str, Any]:
    """Settings of a benchmarked ``simgate serve`` (also written as its TOML config)."""
    return {
        "data_dir": str(workdir / "data"),
        "database_url": url,
        "master_key": "bench-master-key-0123456789",
        "log_level": "warning",
        "demo": {"create": False},
        "billing": {"default_sms_price": "0.001"},
        "http": {"port": port},
    }


async def prepare_gateway_user(workdir: Path, url: str, port: int) -> None:
    """A funded account and the gateway user the Dinstar/OpenVox benches log in with."""
    settings = load_settings(None, overrides=server_settings_data(workdir, url, port))
    async with opened(settings) as rt:
        assert rt.services is not None
        account = await rt.services.accounts.create_account(name="bench", balance="100000000")
        await rt.services.accounts.create_user(
            account.id, username=GATEWAY_USER, password=GATEWAY_PASSWORD
        )
