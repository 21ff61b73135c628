"""OpenVox ``/smsoutbox/get`` latency over a large outbox (SQLite), against ``simgate serve``.

    .venv/bin/python bench/openvox_outbox.py [--rows 10000000] [--queries 300] [--keep DIR]
        [--against /work/main]

Bulk-loads ``--rows`` messages for one account with raw ``executemany`` into a fresh SQLite
database (ids spread over 100 days, 100 000 recipients, 85 % DELIVERED / 10 % SENT / 5 %
FAILED), then times sequential POSTs of filtered pages against a real ``simgate serve``
subprocess: by number, by number + 30-day window, by a 1-day window, and the unfiltered
first page (whose ``total`` counts every row). Baseline in the same run: the same page via
``OpenVoxService.outbox`` in-process (no HTTP, JSON or auth), so the ratio is the API's overhead.
``--keep DIR`` reuses a database loaded earlier (loading 10 M rows takes minutes).

Beside each row, in the same run and by turns with the requests: the raw reads the page needs
(count and page of the shown columns, plain sqlite3 in this process), the ceiling of the
issue 15 "reads" done-when line. ``--against TREE`` also starts TREE's ``simgate serve`` (its
``src`` first on PYTHONPATH) on the same database, measured by turns with this tree's.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simgate.api.dialects.openvox import render
from simgate.domain import ids
from simgate.domain.messages import State
from simgate.runtime import Runtime
from simgate.services.openvox import Window
from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port, write_config

USER, PASSWORD = "bench", "bench-password"
HEAD, BASE, RAW = "this tree", "against", "raw"
T0_MS = 1_767_225_600_000  # 2026-01-01 00:00:00 UTC
SPAN_MS = 100 * 86_400_000
RECIPIENTS = 100_000
CHUNK = 50_000


def settings_data(workdir: Path, port: int = 0) -> dict[str, Any]:
    return {
        "data_dir": str(workdir / "data"),
        "database_url": f"sqlite+aiosqlite:///{workdir / 'outbox.db'}",
        "master_key": "openvox-bench-master-key-0123456789",
        "log_level": "warning",
        "demo": {"create": False},
        "http": {"port": port},
    }


def number(i: int) -> str:
    return f"86139{i:08d}"


async def prepare(workdir: Path) -> int:
    rt = Runtime(load_settings(None, overrides=settings_data(workdir)), role="admin")
    sv = await rt.open()
    try:
        account = await sv.accounts.create_account(name="bench", balance="1000")
        await sv.accounts.create_user(account.id, username=USER, password=PASSWORD)
        return account.id
    finally:
        await rt.close()


COLUMNS = (
    "id, account_id, app_id, dialect, client_ref, task_id, sender, recipient, text, encoding, "
    "parts, port_hint, line, port, state, attempts, next_attempt_ms, validity_until_ms, "
    "report_requested, price_micros, charge_micros, currency, first_ref, parts_ok, "
    "parts_reported, accepted_ms, queued_ms, submitting_ms, sent_ms, delivered_ms, failed_ms, "
    "updated_ms"
)


def load(db: Path, account_id: int, rows: int) -> float:
    """Raw executemany of ``rows`` messages; returns seconds taken."""
    rng = random.Random(7)
    step = SPAN_MS / rows
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")  # a scratch load: no journal, no fsync
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    # Secondary indexes are dropped during the load and rebuilt after (sorted builds).
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='messages' "
        "AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    marks = ",".join("?" * len(COLUMNS.split(",")))
    sql = f"INSERT INTO messages ({COLUMNS}) VALUES ({marks})"
    start = time.perf_counter()
    for base in range(0, rows, CHUNK):
        batch = []
        for i in range(base, min(rows, base + CHUNK)):
            ms = T0_MS + int(i * step)
            roll = rng.random()
            state = State.DELIVERED if roll < 0.85 else State.SENT if roll < 0.95 else State.FAILED
            done = ms + 3000
            batch.append(
                (
                    ids.compose(ms, i), account_id, None, "openvox", None, None, "",
                    number(rng.randrange(RECIPIENTS)), f"bench message {i}", 0, 1, None, "sim",
                    rng.randrange(8), int(state), 1, ms, ms + 172_800_000, 1, 1000, 1000, "USD",
                    i % 256, 1, 1 if state is not State.SENT else 0, ms, ms, ms + 1, ms + 2,
                    done if state is State.DELIVERED else None,
                    done if state is State.FAILED else None, done,
                )
            )  # fmt: skip
        conn.execute("BEGIN")
        conn.executemany(sql, batch)
        conn.execute("COMMIT")
        if base and base % 1_000_000 == 0:
            print(f"  loaded {base:,} rows in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    for name, sql_text in indexes:
        t = time.perf_counter()
        conn.execute(sql_text)
        print(f"  index {name} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    return time.perf_counter() - start


def queries(count: int) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(11)

    def day(offset_days: float) -> str:
        return render.format_time(T0_MS + int(offset_days * 86_400_000))

    out: dict[str, list[dict[str, Any]]] = {"number": [], "number + 30 days": [], "1 day": []}
    for _ in range(count):
        n = number(rng.randrange(RECIPIENTS))
        start = rng.uniform(0, 70)
        out["number"].append({"phone_number_filter": n})
        out["number + 30 days"].append(
            {"phone_number_filter": n, "start_datetime_filter": day(start),
             "end_datetime_filter": day(start + 30)}
        )  # fmt: skip
        d = rng.uniform(0, 99)
        out["1 day"].append(
            {"start_datetime_filter": day(d), "end_datetime_filter": day(d + 1),
             "current_page": rng.randrange(1, 20)}
        )  # fmt: skip
    return out


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def raw_sql(body: dict[str, Any], account_id: int) -> list[tuple[str, tuple[Any, ...]]]:
    """The raw reads a ``/smsoutbox/get`` needs (count and page, the shown columns), as
    plain sqlite3 would run them: the ceiling beside each row of the table."""
    listed = [int(s) for s in render.LISTED_STATES]
    where = f"account_id = ? AND state IN ({','.join('?' * len(listed))})"
    params: list[Any] = [account_id, *listed]
    n = body.get("phone_number_filter")
    if n:
        where += " AND recipient = ?"
        params.append(n)
    if body.get("start_datetime_filter"):
        where += " AND id >= ?"
        params.append(ids.lower_bound(render.parse_time(body["start_datetime_filter"], "UTC")))  # type: ignore[arg-type]
    if body.get("end_datetime_filter"):
        where += " AND id <= ?"
        params.append(ids.upper_bound(render.parse_time(body["end_datetime_filter"], "UTC")))  # type: ignore[arg-type]
    offset = (int(body.get("current_page", 1)) - 1) * 50
    return [
        (f"SELECT count(*) FROM messages WHERE {where}", tuple(params)),
        (
            "SELECT id, port, line, recipient, accepted_ms, text, state FROM messages "
            f"WHERE {where} ORDER BY id DESC LIMIT 50 OFFSET ?",
            (*params, offset),
        ),
    ]


def raw_read(con: sqlite3.Connection, statements: list[tuple[str, tuple[Any, ...]]]) -> float:
    t = time.perf_counter()
    con.execute("BEGIN")
    for sql, params in statements:
        con.execute(sql, params).fetchall()
    con.execute("COMMIT")
    return time.perf_counter() - t


async def http_latencies(
    urls: dict[str, str],
    bodies: list[dict[str, Any]],
    uri: str = "/smsoutbox/get",
    raw: tuple[sqlite3.Connection, int] | None = None,
) -> tuple[dict[str, list[float]], int]:
    """Each body against every server (and the raw reads, when ``raw`` is given) by turns,
    the order rotating per body: the drift of a busy machine falls on every side alike."""
    out: dict[str, list[float]] = {name: [] for name in urls}
    if raw is not None:
        out[RAW] = []
    total = 0
    clients = {name: httpx.AsyncClient(base_url=url, timeout=120) for name, url in urls.items()}
    try:
        sides = list(out)
        for k, body in enumerate(bodies):
            for side in sides[k % len(sides) :] + sides[: k % len(sides)]:
                if side == RAW:
                    assert raw is not None
                    out[RAW].append(raw_read(raw[0], raw_sql(body, raw[1])))
                    continue
                t = time.perf_counter()
                r = await clients[side].post(
                    uri, json={"username": USER, "password": PASSWORD, **body}
                )
                out[side].append(time.perf_counter() - t)
                doc = r.json()
                assert doc["code"] == 200, doc
                if side == HEAD:
                    total += doc.get("total", 0) if uri == "/smsoutbox/get" else 0
    finally:
        for client in clients.values():
            await client.aclose()
    return out, total


async def service_latencies(
    workdir: Path, account_id: int, bodies: list[dict[str, Any]]
) -> list[float]:
    rt = Runtime(load_settings(None, overrides=settings_data(workdir)), role="admin")
    sv = await rt.open(migrate=False)
    boxes = sv.openvox
    out: list[float] = []
    try:
        for body in bodies:
            n = body.get("phone_number_filter")
            start = body.get("start_datetime_filter")
            end = body.get("end_datetime_filter")
            window = Window(
                (n,) if n else (),
                render.parse_time(start, "UTC") if start else None,
                render.parse_time(end, "UTC") if end else None,
            )
            page = int(body.get("current_page", 1))
            t = time.perf_counter()
            await boxes.outbox(
                account_id, window, states=render.LISTED_STATES, offset=(page - 1) * 50, limit=50
            )
            out.append(time.perf_counter() - t)
    finally:
        await rt.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--keep", type=Path, help="directory of a database loaded earlier")
    parser.add_argument(
        "--against",
        type=Path,
        help="another tree (e.g. /work/main): its simgate serve on the same database, "
        "measured by turns with this tree's",
    )
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="openvox_outbox_"))
    workdir.mkdir(parents=True, exist_ok=True)
    marker = workdir / "loaded.txt"
    if marker.exists():
        account_id, rows = (int(x) for x in marker.read_text().split())
        print(f"reusing {rows:,} rows in {workdir}", file=sys.stderr)
    else:
        account_id = asyncio.run(prepare(workdir))
        secs = load(workdir / "outbox.db", account_id, args.rows)
        rows = args.rows
        marker.write_text(f"{account_id} {rows}")
        print(f"loaded {rows:,} rows in {secs:.0f} s ({rows / secs:,.0f} rows/s)", file=sys.stderr)
    plan = queries(args.queries)
    plan["unfiltered page 1"] = [{}] * min(5, args.queries)
    trees: dict[str, dict[str, str]] = {HEAD: {}}
    if args.against is not None:
        tree = args.against.resolve()
        trees[f"{BASE} {tree}"] = {"PYTHONPATH": f"{tree / 'src'}:{tree}"}
    procs: dict[str, SimgateProcess] = {}
    results: dict[str, tuple[dict[str, list[float]], int]] = {}
    con = sqlite3.connect(workdir / "outbox.db", isolation_level=None)
    try:
        for name, env in trees.items():
            port = free_port()
            cfg = write_config(workdir / "simgate.toml", settings_data(workdir, port))
            procs[name] = SimgateProcess(
                ["serve"], workdir=workdir, config=cfg, port=port, env=env
            ).start()
            procs[name].wait_healthy(60)
        urls = {name: proc.url for name, proc in procs.items()}
        asyncio.run(http_latencies(urls, plan["number"][:5], raw=(con, account_id)))  # warm up
        for name, bodies in plan.items():
            results[name] = asyncio.run(http_latencies(urls, bodies, raw=(con, account_id)))
        # The same HTTP client and server on an endpoint that reads nothing: HTTP's own cost.
        spans, _ = asyncio.run(http_latencies(urls, [{}] * args.queries, "/sms/get_valid_spans"))
    finally:
        for proc in procs.values():
            proc.stop()
        con.close()
    header = [
        "filter", "server", "n", "avg total", "p50 ms", "p99 ms", "raw p50 ms", "raw p99 ms",
        "p50/raw", "p99/raw", "in-process p99 ms",
    ]  # fmt: skip
    rows_out = []
    for name, (lat, total) in results.items():
        base = asyncio.run(service_latencies(workdir, account_id, plan[name]))
        raw = lat[RAW]
        for server in procs:
            mine = lat[server]
            rows_out.append(
                [name, server, str(len(mine)), f"{total / len(mine):,.0f}",
                 f"{pct(mine, 50) * 1000:.1f}", f"{pct(mine, 99) * 1000:.1f}",
                 f"{pct(raw, 50) * 1000:.1f}", f"{pct(raw, 99) * 1000:.1f}",
                 f"{pct(mine, 50) / pct(raw, 50):.2f}", f"{pct(mine, 99) / pct(raw, 99):.2f}",
                 f"{pct(base, 99) * 1000:.1f}" if server == HEAD else "-"]
            )  # fmt: skip
    for server in procs:
        rows_out.append(
            ["ref: /sms/get_valid_spans (no DB)", server, str(len(spans[server])), "-",
             f"{pct(spans[server], 50) * 1000:.1f}", f"{pct(spans[server], 99) * 1000:.1f}",
             "-", "-", "-", "-", "-"]
        )  # fmt: skip
    widths = [max(len(c) for c in col) for col in zip(header, *rows_out, strict=True)]
    print(f"openvox /smsoutbox/get over {rows:,} messages (SQLite, simgate serve, 1 client)")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows_out:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
