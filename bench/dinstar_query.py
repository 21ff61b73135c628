"""Dinstar ``query_sms_result`` with 32 user_ids over a large stored history.

    .venv/bin/python bench/dinstar_query.py [--rows 10000000] [--queries 400] [--rebuild]

The history is bulk-loaded with raw ``executemany`` into a SQLite file in /tmp (kept between
runs, keyed by the row count: building 10 M rows takes minutes, a rerun only seconds). Each
user_id occurs twice (clients reuse ids), so a 32-id query returns 64 rows. Measured in
process (the app through httpx's ASGI transport, Basic auth cached): p50/p99 of the API
call, against the same query straight on the store (no HTTP, no rendering) and a
``query_sms_in_queue`` call (auth + envelope, one count) as baselines in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from simgate.domain import ids
from simgate.runtime import Runtime
from simgate.settings import Settings, load_settings
from simgate.store.dialects import dinstar as repo

USER, PASSWORD = "bench", "bench-password"
START_MS = 1_767_225_600_000  # 2026-01-01
STEP_MS = 250
USER_IDS = 5_000_000  # rows / USER_IDS = rows per user_id (2 at 10 M)


def settings(folder: Path, db: Path) -> Settings:
    return load_settings(
        None,
        overrides={
            "data_dir": str(folder),
            "database_url": f"sqlite+aiosqlite:///{db}",
            "master_key": "dinstar-bench-master-key-0123456789",
            "log_level": "warning",
            "demo": {"create": False},
        },
    )


async def create_schema(folder: Path, db: Path) -> None:
    rt = Runtime(settings(folder, db), role="admin")
    sv = await rt.open()
    try:
        account = await sv.accounts.create_account(name="bench", balance="1000")
        await sv.accounts.create_user(account.id, username=USER, password=PASSWORD)
        assert account.id == 1
    finally:
        await rt.close()


def rows(n: int, user_ids: int) -> Iterator[tuple[Any, ...]]:
    for i in range(n):
        ms = START_MS + i * STEP_MS
        yield (
            ids.compose(ms, i),  # id
            str(i % user_ids),  # client_ref = user_id
            i // 128 + 1,  # task_id
            f"86138{i % 100_000_000:08d}",  # recipient
            i % 8,  # port
            ms,  # next_attempt_ms, accepted_ms, queued_ms, submitting_ms
            ms + 172_800_000,  # validity_until_ms
            i % 256,  # first_ref
            ms + 100,  # sent_ms
            ms + 2000,  # delivered_ms, updated_ms
        )


INSERT = """INSERT INTO messages (id, account_id, app_id, dialect, client_ref, task_id, sender,
 recipient, text, encoding, parts, port_hint, line, port, state, attempts, next_attempt_ms,
 validity_until_ms, report_requested, price_micros, charge_micros, currency, first_ref,
 parts_ok, parts_reported, status_code, accepted_ms, queued_ms, submitting_ms, sent_ms,
 delivered_ms, updated_ms)
 VALUES (?1, 1, NULL, 'dinstar', ?2, ?3, '', ?4, 'bench message', 8, 1, NULL, 'sim', ?5, 4, 1,
 ?6, ?7, 1, 1000, 1000, 'USD', ?8, 1, 1, 0, ?6, ?6, ?6, ?9, ?10, ?10)"""


def bulk_load(db: Path, n: int) -> None:
    """Raw executemany with the messages indexes dropped, then rebuilt once."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='messages' "
        "AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    t = time.perf_counter()
    source = rows(n, min(USER_IDS, max(1, n // 2)))
    chunk = 200_000
    done = 0
    while done < n:
        batch = [next(source) for _ in range(min(chunk, n - done))]
        conn.execute("BEGIN")
        conn.executemany(INSERT, batch)
        conn.execute("COMMIT")
        done += len(batch)
        print(f"  {done:,} rows ({done / (time.perf_counter() - t):,.0f}/s)", file=sys.stderr)
    for name, sql in indexes:
        t2 = time.perf_counter()
        conn.execute(sql)
        print(f"  index {name}: {time.perf_counter() - t2:.1f} s", file=sys.stderr)
    conn.execute("ANALYZE")
    conn.close()


def percentiles(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return qs[49], qs[98]


CPU_MS: dict[int, float] = {}


async def timed(fn: Callable[[], Awaitable[Any]], count: int) -> list[float]:
    """Wall ms per call; the process's CPU ms per call (all threads) goes to CPU_MS.

    CPU time is the steadier figure on a shared machine: wall time includes waiting for
    cores that other programs hold.
    """
    out: list[float] = []
    cpu = time.process_time()
    for _ in range(count):
        t = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t) * 1000)
    CPU_MS[id(out)] = (time.process_time() - cpu) * 1000 / count
    return out


async def measure(folder: Path, db: Path, n: int, queries: int) -> list[list[str]]:
    rt = Runtime(settings(folder, db), role="serve")
    await rt.open()
    rng = random.Random(7)
    per_id = min(USER_IDS, max(1, n // 2))
    results: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    try:
        transport = httpx.ASGITransport(app=rt.app())
        async with httpx.AsyncClient(
            transport=transport, base_url="http://b", auth=(USER, PASSWORD)
        ) as client:

            async def api() -> None:
                users = rng.sample(range(per_id), 32)
                r = await client.post("/api/query_sms_result", json={"user_id": users})
                body = r.json()
                assert body["error_code"] == 200, body
                counts["api"] = len(body["result"])

            async def direct() -> None:
                users = [str(u) for u in rng.sample(range(per_id), 32)]
                async with rt.store.db.read() as conn:
                    found = await repo.find_messages(conn, account_id=1, user_refs=users)
                counts["direct"] = len(found)

            async def numbers() -> None:
                nums = [f"86138{rng.randrange(min(n, 100_000_000)):08d}" for _ in range(32)]
                r = await client.post("/api/query_sms_result", json={"number": nums})
                assert r.json()["error_code"] == 200
                counts["numbers"] = len(r.json()["result"])

            async def queue() -> None:
                r = await client.get("/api/query_sms_in_queue")
                assert r.json()["error_code"] == 200

            await timed(queue, 20)  # warm up: auth cache, pools, page cache
            await timed(api, 20)
            for name, fn in (
                ("queue", queue),
                ("direct", direct),
                ("api", api),
                ("numbers", numbers),
            ):
                results[name] = await timed(fn, queries)
    finally:
        await rt.close()
    base = percentiles(results["queue"])[0]
    labels = {
        "api": "query_sms_result, 32 user_ids",
        "numbers": "query_sms_result, 32 numbers",
        "direct": "same user_id query on the store (no HTTP)",
        "queue": "baseline: query_sms_in_queue",
    }
    table = []
    for name in ("api", "numbers", "direct", "queue"):
        p50, p99 = percentiles(results[name])
        table.append(
            [
                labels[name],
                str(counts.get(name, "-")),
                f"{p50:.2f}",
                f"{p99:.2f}",
                f"{CPU_MS[id(results[name])]:.2f}",
                f"{p50 / base:.2f}",
            ]
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    folder = Path("/tmp/simgate-bench-dinstar")
    folder.mkdir(exist_ok=True)
    db = folder / f"messages-{args.rows}.db"
    marker = db.with_suffix(".ready")
    if args.rebuild or not marker.exists():
        for p in (db, marker, Path(f"{db}-wal"), Path(f"{db}-shm")):
            p.unlink(missing_ok=True)
        t = time.perf_counter()
        asyncio.run(create_schema(folder, db))
        bulk_load(db, args.rows)
        marker.write_text("ok\n")
        print(f"built {args.rows:,} rows in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    table = asyncio.run(measure(folder, db, args.rows, args.queries))
    header = ["what", "rows out", "p50 ms", "p99 ms", "CPU ms/call", "p50 vs queue"]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *table, strict=True)]
    print(
        f"dinstar queries over {args.rows:,} stored messages "
        f"(SQLite, in process, {args.queries} each)"
    )
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
