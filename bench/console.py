"""Web console latency over a large message table (issue 19: < 100 ms p99 on the server).

    .venv/bin/python bench/console.py [--rows 10000000] [--db-dir /tmp/console_bench] [--reuse]
        [--calls 1000000]

Builds the message table of ``bench/itnio_query.py`` (its loader: ``--rows`` messages over
the last 89 days, one account, 90 % delivered), starts a real ``simgate serve`` on it, logs
a console user in and times, with one client over loopback, each page ``--repeat`` times:
the overview (charts of the last hour and day, queue, pushes, calls, balances, lines), a
search by number, a state + time-window search, a cursor page deep in the table, one
message's page, the lines page (each port's day), and a search of calls by number over
``--calls`` call records (bench/voice_query.py's loader, once) with the index of migration
0014 and, in the same run, without it (dropped, then made again). Baseline in the same run:
``GET /healthz`` (one database round trip, no rendering), so the ratio says what the console
adds on this machine. Times are client-side over loopback, so they bound the server's time
from above.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import plain_table as render_table
from bench.itnio_query import DAY_MS, fresh_dir, load
from bench.itnio_support import create_tenant, pct, settings_data, start_server
from bench.voice_query import load_sqlite as load_calls
from simgate.domain import ids
from simgate.runtime import Runtime
from simgate.settings import load_settings

USER, PASSWORD = "bench", "bench-password"
CALLS_INDEX = "ix_calls_account_callee"


async def add_console_user(workdir: Path, url: str) -> None:
    rt = Runtime(load_settings(None, overrides=settings_data(workdir, url)), role="admin")
    sv = await rt.open()
    try:
        if not any(u.username == USER for u in await sv.console_auth.list_users()):
            await sv.console_auth.create_user(username=USER, password=PASSWORD)
    finally:
        await rt.close()


async def login(client: httpx.AsyncClient) -> None:
    page = await client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    form = {"username": USER, "password": PASSWORD, "csrf": token.group(1)}
    r = await client.post("/console/login", data=form)
    assert r.status_code == 303, r.text


async def timed(client: httpx.AsyncClient, path: str) -> float:
    t = time.perf_counter()
    r = await client.get(path)
    elapsed = time.perf_counter() - t
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return elapsed


def local(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


async def without_index(
    client: httpx.AsyncClient,
    make: Callable[[], str],
    db: Path,
    args: argparse.Namespace,
    base: float,
) -> list[str]:
    """The calls search by number with ix_calls_account_callee dropped (what it cost before
    migration 0014), then the index made again."""
    con = sqlite3.connect(db)
    create = con.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (CALLS_INDEX,)
    ).fetchone()[0]
    con.execute(f"DROP INDEX {CALLS_INDEX}")
    con.commit()
    try:
        for _ in range(2):
            await timed(client, make())
        samples = [await timed(client, make()) for _ in range(args.unindexed_repeat)]
    finally:
        con.execute(create)
        con.commit()
        con.close()
    p50, p99 = pct(samples, 50) * 1000, pct(samples, 99) * 1000
    name = f"calls search: number, index dropped ({args.unindexed_repeat} requests)"
    return [name, f"{p50:.1f}", f"{p99:.1f}", f"{p99 / base:.1f}x"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--db-dir", default="/tmp/console_bench")
    parser.add_argument("--reuse", action="store_true", help="keep an existing bench database")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--calls", type=int, default=1_000_000, help="call records (loaded once)")
    parser.add_argument("--unindexed-repeat", type=int, default=20)
    args = parser.parse_args()
    workdir = Path(args.db_dir)
    db = workdir / "bench.db"
    url = f"sqlite+aiosqlite:///{db}"
    if not (args.reuse and db.exists()):
        fresh_dir(workdir)
        creds = await create_tenant(workdir, url)
        con = sqlite3.connect(db)
        other = con.execute(
            "INSERT INTO apps (app_id, account_id, kind, name, push_json, created_ms) "
            "VALUES ('other001', ?, 'sms', 'o', '{}', 0) RETURNING id",
            (creds.account_id,),
        ).fetchone()[0]
        con.commit()
        con.close()
        load(db, creds, other, args.rows, int(time.time() * 1000))
    await add_console_user(workdir, url)  # and migrates the database
    con = sqlite3.connect(db)
    have_calls = con.execute("SELECT count(*) FROM calls").fetchone()[0]
    con.close()
    if not have_calls and args.calls:
        load_calls(db, args.calls, int(time.time() * 1000) - 60 * DAY_MS)
    con = sqlite3.connect(db)
    calls = con.execute("SELECT count(*) FROM calls").fetchone()[0]
    callees = [
        r[0]
        for r in con.execute(
            f"SELECT callee FROM calls WHERE rowid % {max(1, calls // 2000)} = 0 LIMIT 2000"
        )
    ]
    total = con.execute("SELECT count(*) FROM messages").fetchone()[0]
    step = max(1, total // 5000)
    sample = con.execute(
        f"SELECT id, recipient FROM messages WHERE rowid % {step} = 0 LIMIT 5000"
    ).fetchall()
    con.close()
    rng = random.Random(3)
    now = int(time.time() * 1000)

    def number_search() -> str:
        return f"/console/messages?number={rng.choice(sample)[1]}"

    def window_search() -> str:
        start = now - rng.randrange(1, 88) * DAY_MS
        return f"/console/messages?state=FAILED&from={local(start)}&to={local(start + DAY_MS)}"

    def deep_page() -> str:
        return f"/console/messages?before={rng.choice(sample)[0]}"

    def one_message() -> str:
        return f"/console/messages/{rng.choice(sample)[0]}"

    def calls_by_number() -> str:
        return f"/console/calls?number={rng.choice(callees)}"

    cases: list[tuple[str, Callable[[], str]]] = [
        ("GET /healthz (baseline)", lambda: "/healthz"),
        ("overview", lambda: "/console/"),
        ("search: number", number_search),
        ("search: FAILED, one day", window_search),
        ("search: cursor page, any depth", deep_page),
        ("message page", one_message),
        ("lines page (each port's day)", lambda: "/console/lines"),
    ]
    if callees:
        cases.append((f"calls search: number ({calls:,} calls)", calls_by_number))
    proc = start_server(workdir, url)
    rows = []
    try:
        async with httpx.AsyncClient(base_url=proc.url, timeout=60) as client:
            await login(client)
            for _name, make in cases:  # warm the page cache like a running server has it
                for _ in range(5):
                    await timed(client, make())
            base = None
            for name, make in cases:
                samples = [await timed(client, make()) for _ in range(args.repeat)]
                p50, p99 = pct(samples, 50) * 1000, pct(samples, 99) * 1000
                base = base or p99
                rows.append([name, f"{p50:.1f}", f"{p99:.1f}", f"{p99 / base:.1f}x"])
            if callees:
                rows.append(await without_index(client, calls_by_number, db, args, base or 1.0))
    finally:
        proc.stop()
    lo = ids.issued_at_ms(ids.lower_bound(now - 89 * DAY_MS))
    print(
        render_table(
            f"console over {total:,} messages (SQLite, since {local(lo)}), "
            f"{args.repeat} requests each, one client, ms",
            ["request", "p50", "p99", "p99 vs baseline"],
            rows,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
