"""getReport and getSentRcd latency over a large message table (SQLite file under /tmp).

    .venv/bin/python bench/itnio_query.py [--rows 10000000] [--db-dir /tmp/itnio_query] [--reuse]
        [--against /work/main]

Builds a bench database once (schema by the migrations, one account with two SMS apps, then
``--rows`` messages spread over the last 89 days, written with raw ``executemany`` and the
secondary indexes dropped during the load and rebuilt after), starts a real
``simgate serve`` on it, and measures with one client:

- ``getReport`` with 200 random ids of the app (p50, p99);
- ``getSentRcd`` for one day: the first (full, 50 000-row) page and a later page;
- a reference: ``getReport`` with 200 ids older than the kept history (auth, HTTP, client,
  envelope; no row read), the floor any ``getReport`` pays in the same run;
Ceiling beside each: the same data read with the raw sqlite3 module in this process (the
rows the endpoint needs, no HTTP, no JSON, no rendering).

``--against TREE`` also starts TREE's ``simgate serve`` (its ``src`` first on PYTHONPATH) on the
same database and measures both servers and the raw reads by turns: a before/after table with
same-run ratios (issue 15 "reads").
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import plain_table as table
from bench.itnio_support import (
    Creds,
    create_tenant,
    load_creds,
    ms,
    pct,
    start_server,
)
from simgate.domain import ids
from simgate.testing.procs import SimgateProcess

DAY_MS = 86_400_000
HEAD = "this tree"
BASE = "against"
COLUMNS = (
    "id, account_id, app_id, dialect, sender, recipient, text, encoding, parts, line, port, "
    "state, attempts, next_attempt_ms, validity_until_ms, report_requested, price_micros, "
    "charge_micros, currency, parts_ok, parts_reported, status_code, accepted_ms, queued_ms, "
    "sent_ms, delivered_ms, failed_ms, updated_ms"
)


def load(db: Path, creds: Creds, other_app: int, rows: int, now_ms: int) -> None:
    """Rows in id order (appends to the primary key B-tree).

    90 % DELIVERED, 7 % FAILED, 3 % SENT; 60 % of them for the measured app.
    """
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-1000000")
    indexes = con.execute(
        "SELECT name, sql FROM sqlite_master "
        "WHERE type='index' AND tbl_name='messages' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        con.execute(f'DROP INDEX "{name}"')
    start = now_ms - 89 * DAY_MS
    step = (89 * DAY_MS) / rows
    rng = random.Random(7)
    chunk = 200_000
    t0 = time.perf_counter()
    for base in range(0, rows, chunk):
        batch = []
        for i in range(base, min(rows, base + chunk)):
            at = int(start + i * step)
            mid = ids.compose(at, i)
            r = rng.random()
            state, delivered, failed = (
                (4, at + 3000, None)
                if r < 0.90
                else ((5, None, at + 3000) if r < 0.97 else (3, None, None))
            )
            app = creds.app_pk if rng.random() < 0.6 else other_app
            batch.append(
                (
                    mid,
                    creds.account_id,
                    app,
                    "itnio",
                    "",
                    f"86138{i % 100_000_000:08d}",
                    "bench",
                    0,
                    1,
                    "sim",
                    0,
                    state,
                    1,
                    at,
                    at + 2 * DAY_MS,
                    1,
                    1000,
                    1000,
                    "USD",
                    1,
                    1 if state != 3 else 0,
                    0 if state == 4 else (34 if state == 5 else None),
                    at,
                    at,
                    at + 1000,
                    delivered,
                    failed,
                    at + 3000,
                )
            )
        con.execute("BEGIN")
        con.executemany(f"INSERT INTO messages ({COLUMNS}) VALUES ({','.join('?' * 28)})", batch)
        con.execute("COMMIT")
        done = min(rows, base + chunk)
        print(
            f"\rloaded {done:,} rows ({done / (time.perf_counter() - t0):,.0f}/s)",
            end="",
            file=sys.stderr,
        )
    print(file=sys.stderr)
    for _name, sql in indexes:
        con.execute(sql)
    con.execute("ANALYZE")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    print(f"load + index: {time.perf_counter() - t0:,.0f} s", file=sys.stderr)


def fresh_dir(workdir: Path) -> None:
    if workdir.exists():
        for f in workdir.glob("bench.db*"):
            f.unlink()
    workdir.mkdir(parents=True, exist_ok=True)


def day_window(now_ms: int, days_back: int) -> tuple[str, str, int, int]:
    day = (datetime.fromtimestamp(now_ms / 1000, UTC) - timedelta(days=days_back)).date()
    a = datetime(day.year, day.month, day.day, tzinfo=UTC)
    b = a + timedelta(seconds=DAY_MS // 1000 - 1)
    return a.isoformat(), b.isoformat(), int(a.timestamp() * 1000), int(b.timestamp() * 1000)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--db-dir", default="/tmp/itnio_query")
    parser.add_argument("--reuse", action="store_true", help="keep an existing bench database")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument(
        "--against",
        type=Path,
        help="another tree (e.g. /work/main): its simgate serve on the same database, "
        "measured by turns with this tree's",
    )
    args = parser.parse_args()
    workdir = Path(args.db_dir)
    db = workdir / "bench.db"
    url = f"sqlite+aiosqlite:///{db}"
    if not (args.reuse and db.exists()):
        fresh_dir(workdir)
        creds = await create_tenant(workdir, url)
        now = int(time.time() * 1000)
        con = sqlite3.connect(db)
        other = con.execute(
            "INSERT INTO apps (app_id, account_id, kind, name, push_json, created_ms) "
            "VALUES ('other001', ?, 'sms', 'o', '{}', 0) RETURNING id",
            (creds.account_id,),
        ).fetchone()[0]
        con.commit()
        con.close()
        load(db, creds, other, args.rows, now)
    creds = load_creds(workdir)
    now = int(time.time() * 1000)
    con = sqlite3.connect(db)
    total = con.execute("SELECT max(rowid) FROM messages").fetchone()[0]
    # 200 random ids of our app, spread over the whole table (a cold-ish lookup pattern)
    lo, hi = ids.lower_bound(now - 89 * DAY_MS), ids.upper_bound(now)
    probe = [
        r[0]
        for r in con.execute(
            "SELECT id FROM messages WHERE app_id = ? AND id BETWEEN ? AND ? LIMIT 1",
            (creds.app_pk, lo, hi),
        )
    ]
    sample_ids: list[list[int]] = []
    rng = random.Random(1)
    pool = [
        r[0]
        for r in con.execute(
            f"SELECT id FROM messages WHERE app_id = ? AND rowid % {max(1, total // 200_000)} = 0",
            (creds.app_pk,),
        )
    ]
    for _ in range(args.repeat):
        sample_ids.append(rng.sample(pool, 200))
    start_s, end_s, start_ms, end_ms = day_window(now, 10)
    day_rows = con.execute(
        "SELECT count(*) FROM messages "
        "WHERE app_id = ? AND id BETWEEN ? AND ? AND state IN (3,4,5,6,7)",
        (creds.app_pk, ids.lower_bound(start_ms), ids.upper_bound(end_ms)),
    ).fetchone()[0]
    assert probe, "no rows for the app"

    # ---- ceilings: raw sqlite3 reads of the same rows ---------------------------------------
    def raw_report(batch: list[int]) -> None:
        marks = ",".join("?" * len(batch))
        con.execute(f"SELECT * FROM messages WHERE id IN ({marks})", batch).fetchall()

    def raw_page(offset: int) -> int:
        return len(
            con.execute(
                "SELECT id, recipient, state, sent_ms, delivered_ms, failed_ms FROM messages "
                "WHERE app_id = ? AND id BETWEEN ? AND ? AND state IN (3,4,5,6,7) "
                "ORDER BY id LIMIT 50000 OFFSET ?",
                (creds.app_pk, ids.lower_bound(start_ms), ids.upper_bound(end_ms), offset),
            ).fetchall()
        )

    def timed(fn, *a) -> float:  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        fn(*a)
        return time.perf_counter() - t

    # Warm both sides alike: the raw reads run first and would leave the OS cache warm for
    # the same ids the API reads next (a bias of 3x at p50 measured at 10 M rows).
    for b in sample_ids:
        raw_report(b)

    servers: dict[str, SimgateProcess] = {}
    try:
        servers[HEAD] = start_server(workdir, url)
        if args.against is not None:
            tree = args.against.resolve()
            servers[f"{BASE} {tree}"] = start_server(
                workdir, url, env={"PYTHONPATH": f"{tree / 'src'}:{tree}"}
            )
        names = list(servers)
        raw_rep: list[float] = []
        raw_p1: list[float] = []
        raw_p2: list[float] = []
        rep: dict[str, list[float]] = {n: [] for n in names}
        floor: dict[str, list[float]] = {n: [] for n in names}
        pages: dict[str, dict[int, list[float]]] = {n: {0: [], 50_000: []} for n in names}
        sizes: dict[int, int] = {}
        clients = {n: httpx.AsyncClient(base_url=p.url, timeout=60) for n, p in servers.items()}

        async def get(
            name: str, path: str, params: dict[str, str]
        ) -> tuple[float, dict[str, object]]:
            t = time.perf_counter()
            r = await clients[name].get(path, params=params, headers=creds.headers())
            elapsed = time.perf_counter() - t
            data = r.json()
            assert data["status"] == "0", data
            return elapsed, data

        # By turns (raw, then each tree, the order rotating per sample): the drift of a busy
        # machine falls on every side alike, so the ratios hold within the run.
        sides: list[str | None] = [None, *names]
        for k, batch in enumerate(sample_ids):
            for side in sides[k % len(sides) :] + sides[: k % len(sides)]:
                if side is None:
                    raw_rep.append(timed(raw_report, batch))
                    continue
                e, data = await get(
                    side,
                    "/sms/getReport",
                    {"appId": creds.app_id, "msgIds": ",".join(map(str, batch))},
                )
                assert data["nofound"] == "0"
                rep[side].append(e)
        # The HTTP floor in the same run: the same request shape (200 ids, auth, render
        # of the envelope) for ids older than the kept history, so no row is read.
        stale = [ids.compose(now - 400 * DAY_MS, i) for i in range(200)]
        for k in range(len(sample_ids)):
            for side in names[k % len(names) :] + names[: k % len(names)]:
                e, data = await get(
                    side,
                    "/sms/getReport",
                    {"appId": creds.app_id, "msgIds": ",".join(map(str, stale))},
                )
                assert data["nofound"] == "200"
                floor[side].append(e)
        for offset, raw_samples in ((0, raw_p1), (50_000, raw_p2)):
            for _ in range(10):
                raw_samples.append(timed(raw_page, offset))
                for side in names:
                    e, data = await get(
                        side,
                        "/sms/getSentRcd",
                        {
                            "appId": creds.app_id,
                            "startTime": start_s,
                            "endTime": end_s,
                            "startIndex": str(offset),
                        },
                    )
                    pages[side][offset].append(e)
                    sizes[offset] = len(data["array"])  # type: ignore[arg-type]
        for client in clients.values():
            await client.aclose()
    finally:
        for proc in servers.values():
            proc.stop()
        con.close()

    def row(name: str, samples: list[float], raw: list[float] | None, count: str) -> list[str]:
        if raw is None:
            return [name, ms(pct(samples, 50)), ms(pct(samples, 99)), "-", "-", "-", "-", count]
        return [
            name,
            ms(pct(samples, 50)),
            ms(pct(samples, 99)),
            ms(pct(raw, 50)),
            ms(pct(raw, 99)),
            f"{pct(samples, 50) / pct(raw, 50):.2f}",
            f"{pct(samples, 99) / pct(raw, 99):.2f}",
            count,
        ]

    rows = []
    for name in names:
        tag = "" if len(names) == 1 else f" [{name}]"
        rows += [
            row(f"getReport, 200 ids{tag}", rep[name], raw_rep, "200"),
            row(f"ref: getReport, 200 ids out of history (no rows){tag}", floor[name], None, "0"),
            row(f"getSentRcd, 1 day, page 1{tag}", pages[name][0], raw_p1, f"{sizes[0]:,}"),
            row(
                f"getSentRcd, 1 day, page 2{tag}",
                pages[name][50_000],
                raw_p2,
                f"{sizes[50_000]:,}",
            ),
        ]
    print(
        table(
            f"itnio query benchmark: SQLite, {total:,} messages, "
            f"app's day = {day_rows:,} listed rows (ms)",
            ["query", "p50", "p99", "raw p50", "raw p99", "p50/raw", "p99/raw", "rows"],
            rows,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
