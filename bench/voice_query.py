"""recordGroupQuery over millions of call records: call_hours paging against COUNT + OFFSET.

    .venv/bin/python bench/voice_query.py [--rows 5000000] [--backend sqlite|pg]
        [--db-dir /tmp/voice_query] [--reuse] [--queries 200] [--baseline-queries 40]

Builds a database (schema by the migrations) holding ``--rows`` DONE calls of one account
spread evenly over the last 60 days (bulk-loaded: SQLite ``executemany`` with the secondary
indexes dropped during the load; PostgreSQL ``COPY``), with ``call_hours`` filled to match.
Then times what one ``recordGroupQuery`` request costs the store (spec §1.15): the total
(``CallRepo.count_done``) plus one 100-row page at a random offset (``CallRepo.page_done``) of a
random 31-day window. The baseline, measured in the same run on the same data and windows, is
the naive pair ``SELECT COUNT(*)`` + ``ORDER BY id LIMIT 100 OFFSET n``. Every baseline page is
also compared with ours (same ids), so the table is only printed for correct answers.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # type: ignore[import-untyped]
import httpx
from sqlalchemy import func, select

from bench.common import Table, bench_settings, opened, pg_reachable, scratch_url
from simgate.api.dialects.itnio.auth import sign
from simgate.domain import ids
from simgate.domain.accounts import AppKind
from simgate.domain.calls import CallState
from simgate.store import Database
from simgate.store import migrate as migrations
from simgate.store.call_records import HOUR_MS
from simgate.store.calls import CallRepo
from simgate.store.voice_tables import calls

DAY_MS = 86_400_000
ACCOUNT = 1
PAGE = 100
WINDOW_MS = 31 * DAY_MS
COLUMNS = (
    "id", "account_id", "app_id", "kind", "state", "callee", "display_num", "area", "audio_id",
    "file_id", "loop_count", "called_info", "max_duration_s", "max_ringing_s", "recall_count",
    "recall_interval_s", "recalls_done", "line", "next_attempt_ms", "lease_owner",
    "lease_until_ms", "submit_ms", "call_ms", "ringing_ms", "answer_ms", "hangup_ms",
    "call_duration_s", "charged_duration_s", "sip_code", "reason", "dtmf", "bill_period",
    "rate_micros", "base_cost_micros", "cost_micros", "currency", "quote_exchange_micros",
    "settle_rate_micros", "settle_pay_micros", "updated_ms",
)  # fmt: skip
CHUNK = 100_000


def rows(count: int, start_ms: int, first: int) -> list[tuple[Any, ...]]:
    """Records ``first`` .. ``first + CHUNK - 1`` in id order: 70 % answered (20+20 billing)."""
    step = 60 * DAY_MS / count
    rng = random.Random(first)
    chunk: list[tuple[Any, ...]] = []
    done = int(CallState.DONE)
    for i in range(first, min(count, first + CHUNK)):
        at = int(start_ms + i * step)
        answered = rng.random() < 0.7
        talk = rng.randrange(1, 90) if answered else 0
        charged = -(-talk // 20) * 20
        cost = charged * 2000
        chunk.append(
            (
                ids.compose(at, i), ACCOUNT, 1, 1, done, f"91856{i % 10**8:08d}", "1008122211",
                "India(Karnataka)", 1, "12022022570cc2484c59d4f8b9745d34226285b1e.mp3", 1, "",
                None, 60, 0, 300, 0, "sip1", at, None, None, at, at + 1000, at + 3000,
                at + 6000 if answered else None,
                at + 6000 + talk * 1000 if answered else at + 30_000,
                talk, charged, 200 if answered else 486, "success" if answered else "busy",
                "1" if answered else "", "20+20", 120_000, cost, cost, "USD", None, None, None,
                at + 31_000,
            )
        )  # fmt: skip
    return chunk


def chunks(count: int, start_ms: int) -> Iterator[list[tuple[Any, ...]]]:
    for first in range(0, count, CHUNK):
        yield rows(count, start_ms, first)


def hour_counts(count: int, start_ms: int) -> list[tuple[int, int, int]]:
    """call_hours rows for the loaded calls (an id's hour is the hour of its issue time)."""
    step = 60 * DAY_MS / count
    out: Counter[int] = Counter(int(start_ms + i * step) // HOUR_MS for i in range(count))
    return [(ACCOUNT, hour, n) for hour, n in sorted(out.items())]


def progress(done: int, t0: float) -> None:
    rate = done / max(1e-9, time.perf_counter() - t0)
    print(f"\rloaded {done:,} rows ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)


def load_sqlite(path: Path, count: int, start_ms: int) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-1000000")
    indexes = con.execute(
        "SELECT name, sql FROM sqlite_master "
        "WHERE type='index' AND tbl_name='calls' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        con.execute(f'DROP INDEX "{name}"')
    sql = f"INSERT INTO calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    t0 = time.perf_counter()
    done = 0
    for chunk in chunks(count, start_ms):
        con.execute("BEGIN")
        con.executemany(sql, chunk)
        con.execute("COMMIT")
        done += len(chunk)
        progress(done, t0)
    print(file=sys.stderr)
    for _, create in indexes:
        con.execute(create)
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO call_hours (account_id, hour, n) VALUES (?, ?, ?)",
        hour_counts(count, start_ms),
    )
    con.execute("COMMIT")
    con.execute("ANALYZE")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    print(f"load + index: {time.perf_counter() - t0:,.0f} s", file=sys.stderr)


async def load_pg(url: str, count: int, start_ms: int) -> None:
    con = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        indexes = await con.fetch(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename = 'calls' AND indexname <> 'calls_pkey'"
        )
        for r in indexes:
            await con.execute(f'DROP INDEX "{r["indexname"]}"')
        t0 = time.perf_counter()
        done = 0
        for chunk in chunks(count, start_ms):
            await con.copy_records_to_table("calls", records=chunk, columns=list(COLUMNS))
            done += len(chunk)
            progress(done, t0)
        print(file=sys.stderr)
        for r in indexes:
            await con.execute(r["indexdef"])
        await con.copy_records_to_table(
            "call_hours",
            records=hour_counts(count, start_ms),
            columns=["account_id", "hour", "n"],
        )
        await con.execute("VACUUM ANALYZE calls")  # and the visibility map: index-only scans
        await con.execute("VACUUM ANALYZE call_hours")
        print(f"load + index: {time.perf_counter() - t0:,.0f} s", file=sys.stderr)
    finally:
        await con.close()


async def naive(db: Database, lo: int, hi: int, offset: int) -> tuple[int, list[int]]:
    c = calls.c
    where = (c.account_id == ACCOUNT, c.state == int(CallState.DONE), c.id >= lo, c.id <= hi)
    async with db.read() as conn:
        total = (await conn.execute(select(func.count()).where(*where))).scalar_one()
        page = await conn.execute(
            select(*calls.c).where(*where).order_by(c.id).offset(offset).limit(PAGE)
        )
        return int(total), [r.id for r in page]


async def ours(
    db: Database, repo: CallRepo, lo: int, hi: int, offset: int
) -> tuple[int, list[int]]:
    async with db.read() as conn:
        total = await repo.count_done(conn, account_id=ACCOUNT, id_from=lo, id_to=hi)
        page = await repo.page_done(
            conn, account_id=ACCOUNT, id_from=lo, id_to=hi, offset=offset, limit=PAGE
        )
        return total, [r.id for r in page]


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


async def over_http(
    url: str, cases: list[tuple[int, int, int]], count: int
) -> dict[str, list[float]]:
    """The same windows and pages as whole ``recordGroupQuery`` requests (spec §1.15)."""
    with tempfile.TemporaryDirectory(prefix="simgate-bench-vq-") as tmp:
        settings = bench_settings(Path(tmp), url)
        async with opened(settings) as rt:
            sv = rt.services
            assert sv is not None
            account = await sv.accounts.create_account(name="bench-vq", timezone="Asia/Shanghai")
            assert account.id == ACCOUNT, "the loaded calls belong to account 1"
            key = await sv.accounts.create_key(account.id)
            app = await sv.accounts.create_app(account.id, kind=AppKind.VOICE)
            transport = httpx.ASGITransport(app=rt.app(), client=("127.0.0.1", 5000))
            out: dict[str, list[float]] = {"HTTP recordGroupQuery": [], "HTTP getBalance": []}
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:

                def headers() -> dict[str, str]:
                    ts = str(int(time.time()))
                    return {
                        "Content-Type": "application/json;charset=UTF-8",
                        "Api-Key": key.key,
                        "Timestamp": ts,
                        "Sign": sign(key.key, key.secret, ts),
                    }

                for lo, hi, offset in cases[:count]:
                    body = {
                        "current": offset // PAGE + 1,
                        "size": PAGE,
                        "params": {
                            "strTime": iso(ids.issued_at_ms(lo)),
                            "endTime": iso(ids.issued_at_ms(hi)),
                        },
                    }
                    t0 = time.perf_counter()
                    r = await client.post("/voice/recordGroupQuery", json=body, headers=headers())
                    out["HTTP recordGroupQuery"].append((time.perf_counter() - t0) * 1000)
                    got = r.json()
                    assert got["status"] == "0", got
                    assert len(got["data"]["records"]) == min(PAGE, got["data"]["total"] - offset)
                    assert app.app_id  # the voice app exists (records are per account)
                for _ in range(count):
                    t0 = time.perf_counter()
                    r = await client.get("/sms/getBalance", headers=headers())
                    out["HTTP getBalance"].append((time.perf_counter() - t0) * 1000)
                    assert r.json()["status"] == "0"
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fresh_dir(workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    for f in workdir.glob("bench.db*"):
        f.unlink()


@asynccontextmanager
async def database(args: argparse.Namespace, now_ms: int) -> AsyncIterator[tuple[Database, str]]:
    start_ms = now_ms - 60 * DAY_MS
    if args.backend == "sqlite":
        workdir = Path(args.db_dir)
        path = workdir / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        fresh = not (args.reuse and await asyncio.to_thread(path.exists))
        if fresh:
            await asyncio.to_thread(fresh_dir, workdir)
        db = Database(url)
        await db.open()
        try:
            if fresh:
                await migrations.upgrade(db)
                await asyncio.to_thread(load_sqlite, path, args.rows, start_ms)
            yield db, url
        finally:
            await db.close()
        return
    async with scratch_url("pg", Path(args.db_dir)) as url:
        db = Database(url)
        await db.open()
        try:
            await migrations.upgrade(db)
            await load_pg(url, args.rows, start_ms)
            yield db, url
        finally:
            await db.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--backend", choices=["sqlite", "pg"], default="sqlite")
    parser.add_argument("--db-dir", default="/tmp/voice_query")
    parser.add_argument("--reuse", action="store_true", help="SQLite: keep an existing database")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--baseline-queries", type=int, default=40)
    args = parser.parse_args()
    if args.backend == "pg" and not await pg_reachable():
        sys.exit("PostgreSQL is not reachable (set SIMGATE_TEST_PG_URL)")
    print((await run(args)).render())


async def measure(backend: str, workdir: Path, rows: int) -> Table:
    """For ``scripts/bench --only voice_query``: a fresh database in ``workdir``."""
    args = argparse.Namespace(
        rows=rows,
        backend=backend,
        db_dir=str(workdir),
        reuse=False,
        queries=200,
        baseline_queries=40,
    )
    return await run(args)


async def run(args: argparse.Namespace) -> Table:
    # Loaded relative to a fixed hour, so --reuse finds the same data.
    now_ms = (int(time.time() * 1000) // DAY_MS) * DAY_MS
    rng = random.Random(11)
    async with database(args, now_ms) as (db, url):
        repo = CallRepo()
        first, last = now_ms - 60 * DAY_MS, now_ms
        # Same windows and offsets for both: (lo, hi, offset as a fraction of the total).
        plan = []
        for _ in range(args.queries):
            start = rng.randrange(first - DAY_MS, last - WINDOW_MS + DAY_MS)
            start -= start % 1000
            plan.append(
                (ids.lower_bound(start), ids.upper_bound(start + WINDOW_MS - 1000), rng.random())
            )
        # The offsets come from the true totals (a random page that exists).
        cases: list[tuple[int, int, int]] = []
        totals: list[int] = []
        for lo, hi, where in plan:
            async with db.read() as conn:
                total = await repo.count_done(conn, account_id=ACCOUNT, id_from=lo, id_to=hi)
            totals.append(total)
            cases.append((lo, hi, int(where * total) // PAGE * PAGE))
        timings: dict[str, list[float]] = {"call_hours": [], "naive": []}
        answers = []
        for lo, hi, offset in cases:
            t0 = time.perf_counter()
            answers.append(await ours(db, repo, lo, hi, offset))
            timings["call_hours"].append((time.perf_counter() - t0) * 1000)
        for (lo, hi, offset), got in list(zip(cases, answers, strict=True))[
            : args.baseline_queries
        ]:
            t0 = time.perf_counter()
            expected = await naive(db, lo, hi, offset)
            timings["naive"].append((time.perf_counter() - t0) * 1000)
            assert got == expected, (lo, hi, offset, got[0], expected[0])
        table = Table(
            f"recordGroupQuery [{args.backend}]: total + one {PAGE}-row page, random 31-day "
            f"window, random offset; {args.rows:,} DONE calls over 60 days "
            f"(~{statistics.mean(totals):,.0f} rows per window), ms",
            ["query", "requests", "p50", "p99", "max", "vs naive p50"],
            [],
            note="naive = SELECT COUNT(*) + ORDER BY id LIMIT 100 OFFSET n on the same data "
            "(the same windows and offsets; every naive answer equalled ours). HTTP rows: the "
            "whole signed request through the ASGI app in-process (auth, parse, store, render "
            "100 records, JSON); getBalance = the cheapest signed request, the HTTP floor.",
        )
        timings.update(await over_http(url, cases, args.queries))
        base = statistics.median(timings["naive"])
        for name, values in timings.items():
            p50 = statistics.median(values)
            table.rows.append(
                [name, len(values), p50, pct(values, 0.99), max(values), f"{base / p50:,.1f}x"]
            )
        return table


if __name__ == "__main__":
    asyncio.run(main())
