"""Short indexed reads (an API key by its name): which way is fastest (issue 15).

    .venv/bin/python bench/auth_query.py [--backend sqlite|pg|both] [--reads 3000]

One account with 200 keys in a fresh database; each way reads random keys through the
store's own ``get_key``, one at a time and 32 at once:

- ``db.read()``: the pooled connection (aiosqlite on SQLite: a thread hop per call);
- ``db.read_short()``: on SQLite a connection driven on the event loop's thread
  (store/loop_sqlite.py); on PostgreSQL the same pool as ``read()``;
- baselines in the same run: on SQLite raw ``sqlite3`` in one ``asyncio.to_thread`` per
  read (the "one thread call per whole read" alternative) and raw ``sqlite3`` on the loop
  (the floor); on PostgreSQL asyncpg's ``fetchrow`` on one connection (prepared, cached).

Microseconds per read, wall and CPU (this process, every thread).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import make_url

from bench.common import Table, bench_settings, opened, pg_reachable, scratch_url
from simgate.store import Store

Read = Callable[[str], Awaitable[object]]
KEYS = 200


async def _timed(read: Read, keys: list[str], concurrency: int) -> tuple[float, float]:
    """(wall µs, CPU µs) per read."""
    await read(keys[0])
    wall, cpu = time.perf_counter(), time.process_time()
    if concurrency == 1:
        for k in keys:
            await read(k)
    else:
        for i in range(0, len(keys), concurrency):
            await asyncio.gather(*(read(k) for k in keys[i : i + concurrency]))
    n = len(keys)
    return (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6


async def _ways(store: Store, url: str) -> dict[str, Read]:
    repo = store.accounts

    async def pooled(key: str) -> object:
        async with store.db.read() as conn:
            return await repo.get_key(conn, key)

    async def short(key: str) -> object:
        async with store.db.read_short() as conn:
            return await repo.get_key(conn, key)

    ways: dict[str, Read] = {"db.read()": pooled, "db.read_short()": short}
    if url.startswith("sqlite"):
        path = make_url(url).database
        assert path
        raw = sqlite3.connect(path, check_same_thread=False)
        lock = asyncio.Lock()  # one sqlite3 connection: one thread at a time

        def fetch(key: str) -> object:
            return raw.execute("SELECT * FROM api_keys WHERE key = ?", (key,)).fetchone()

        async def in_thread(key: str) -> object:
            async with lock:
                return await asyncio.to_thread(fetch, key)

        async def on_loop(key: str) -> object:
            return fetch(key)

        ways["raw sqlite3, 1 thread call/read"] = in_thread
        ways["raw sqlite3 on the loop (floor)"] = on_loop
    else:
        pg = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        stmt = await pg.prepare("SELECT * FROM api_keys WHERE key = $1")
        pg_lock = asyncio.Lock()  # one connection: one query at a time

        async def prepared(key: str) -> object:
            async with pg_lock:
                return await stmt.fetchrow(key)

        ways["asyncpg prepared fetchrow (floor)"] = prepared
    return ways


async def measure(backend: str, workdir: Path, reads: int = 3000) -> Table:
    rows: list[Sequence[Any]] = []
    async with scratch_url(backend, workdir) as url, opened(bench_settings(workdir, url)) as rt:
        sv = rt.services
        assert sv is not None
        account = await sv.accounts.create_account(name="bench", balance="1")
        names = [(await sv.accounts.create_key(account.id)).key for _ in range(KEYS)]
        keys = [random.Random(i).choice(names) for i in range(reads)]
        ways = await _ways(rt.store, url)
        for name, read in ways.items():
            seq = await _timed(read, keys, 1)
            conc = await _timed(read, keys, 32)
            rows.append([name, *seq, *conc])
    base = rows[0]
    return Table(
        f"short reads ({backend}): one API key by name, {reads:,} reads",
        ["way", "µs/read", "CPU µs/read", "µs/read ×32", "CPU µs ×32"],
        rows,
        note=f"db.read_short() / db.read(): wall {rows[1][1] / base[1]:.2f}, "
        f"CPU {rows[1][2] / base[2]:.2f} (one at a time)",
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "pg", "both"], default="both")
    parser.add_argument("--reads", type=int, default=3000)
    args = parser.parse_args()
    backends = ["sqlite", "pg"] if args.backend == "both" else [args.backend]
    if "pg" in backends and not await pg_reachable():
        backends.remove("pg")
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="auth_query_") as tmp:
            print((await measure(backend, Path(tmp), args.reads)).render(), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
