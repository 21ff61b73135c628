"""One push claim against a backlog whose first endpoint's window is full (issue 15 debts).

    PYTHONPATH=src:. .venv/bin/python bench/push_claim.py [--backend sqlite|pg] [--pending 10000]
        [--endpoints 1000,5000]

``pending`` rows wait in the outbox: the first 90 % for endpoint A (due first), the rest for
endpoint B. A holds a full window (its first ``window`` rows leased), so a claim can take
only B's rows. Cases: "A full, B due" (the claim should take ``limit`` of B's rows) and
"only A, full" (all rows A's: the claim takes nothing).

Many endpoints: A full as above with half the backlog, and each of ``--endpoints`` others
with a few due rows (the rest of the backlog, at least two each), due after A's; the case
"A's window only" has A holding just its full window (the walk skips only those rows).

Every case is one outbox, claimed three ways in the same process: walking ``ix_pushes_due``
past the full endpoint's rows (what the claim did before migration 0015), endpoint by endpoint
whatever their number (the claim of 0015), and the claim as it is (endpoint by endpoint up to
``store/push_tables.py`` ``ENDPOINTS_SCANNED`` pending endpoints, the walk past them). Each
claim runs in a transaction rolled back after it, so every repetition sees the same outbox;
the ways take turns; the table gives the median milliseconds per claim (and the rows
claimed).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy.ext.asyncio import AsyncConnection

from bench.common import Table, bench_settings, opened, scratch_url
from simgate.domain.pushes import ClaimedPush
from simgate.runtime import Runtime
from simgate.store import pushes as outbox
from simgate.store.push_tables import ENDPOINTS_SCANNED

WINDOW = 512
LIMIT = 500
A = "http://a.example:80"
B = "http://b.example:80"
NOW = 10_000
# The ways a claim is measured: how many pending endpoints it may scan one by one.
WAYS = {"walk": 0, "by endpoint": 10**9, "as is": ENDPOINTS_SCANNED}


def _planned(endpoint: str, n: int) -> list[outbox.NewPush]:
    return [
        outbox.NewPush(
            endpoint=endpoint,
            order_key=None,
            kind="bench",
            method="POST",
            url=endpoint + "/hook",
            headers={},
            body=b"{}",
            signing_secret=None,
        )
        for _ in range(n)
    ]


async def _claim(
    conn: AsyncConnection, *, limit: int, full: str, scanned: int = ENDPOINTS_SCANNED
) -> list[ClaimedPush]:
    """Up to ``limit`` rows at ``NOW``, with ``full``'s window full."""
    return await outbox.claim(
        conn,
        owner="bench",
        now_ms=NOW,
        lease_until_ms=NOW + 60_000,
        limit=limit,
        window=WINDOW,
        busy={full: WINDOW},
        endpoints_scanned=scanned,
    )


async def _fill(rt: Runtime, backend: str, backlog: list[tuple[str, int, int]]) -> None:
    """Pending rows (endpoint, count, due ms), then A's first window leased (A full)."""
    db = rt.store.db
    for endpoint, n, due in backlog:
        await db.write(lambda c, e=endpoint, n=n, t=due: outbox.insert_planned(  # type: ignore[misc]
            c, _planned(e, n), now_ms=t))  # fmt: skip
    if backend == "pg":
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("ANALYZE pushes")
            await conn.commit()
    await db.write(functools.partial(_claim, limit=WINDOW, full=B, scanned=0))  # A's window


async def _timed(rt: Runtime, scanned: int) -> tuple[float, int]:
    """One claim, in a transaction rolled back: its milliseconds and the rows it claimed."""
    async with rt.store.db.engine.connect() as conn:
        await conn.begin()
        t0 = time.perf_counter()
        got = len(await _claim(conn, limit=LIMIT, full=A, scanned=scanned))
        ms = (time.perf_counter() - t0) * 1000
        await conn.rollback()
    return ms, got


async def _case(
    backend: str, backlog: list[tuple[str, int, int]], reps: int
) -> list[tuple[float, int]]:
    """The claim's median ms and rows claimed, each way of :data:`WAYS`, on one outbox (the
    ways take turns, so a change of the machine's load falls on all of them)."""
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            scratch_url(backend, Path(tmp)) as url,
            opened(bench_settings(Path(tmp), url)) as rt,
        ):
            await _fill(rt, backend, backlog)
            times: list[list[float]] = [[] for _ in WAYS]
            got = [0] * len(WAYS)
            for _ in range(reps):
                for i, scanned in enumerate(WAYS.values()):
                    ms, got[i] = await _timed(rt, scanned)
                    times[i].append(ms)
            return [(statistics.median(t), n) for t, n in zip(times, got, strict=True)]


def _many(endpoints: int, pending: int, a_rows: int) -> list[tuple[str, int, int]]:
    each = max(2, (pending - a_rows) // endpoints)
    return [(A, a_rows, 1)] + [(f"http://e{i:05d}.example:80", each, 2) for i in range(endpoints)]


async def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["sqlite", "pg"], default="sqlite")
    ap.add_argument("--pending", type=int, default=10_000)
    ap.add_argument("--endpoints", default="1000,5000", help="comma-separated counts")
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args(argv)
    title = (
        f"push claim (limit {LIMIT}), {args.pending} pending, window {WINDOW}, {args.backend}:"
        " median ms per claim (rows claimed)"
    )
    table = Table(title, ["case", *WAYS], [])
    n = args.pending
    cases = [
        ("A full, B due", [(A, int(n * 0.9), 1), (B, n - int(n * 0.9), 2)]),
        ("only A, full", [(A, n, 1)]),
        ("only B (none full)", [(B, n, 2)]),
    ]
    for e in (int(x) for x in args.endpoints.split(",") if x):
        cases.append((f"A full, {e:,} endpoints due", _many(e, n, n // 2)))
        cases.append((f"A's window only, {e:,} endpoints due", _many(e, n, WINDOW)))
    for name, backlog in cases:
        got = await _case(args.backend, backlog, args.reps)
        table.rows.append([name, *(f"{ms:.2f} ({k})" for ms, k in got)])
    print(table.render())
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
