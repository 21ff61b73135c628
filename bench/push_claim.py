"""One push claim against a backlog whose first endpoint's window is full (issue 15 debts).

    PYTHONPATH=src:. .venv/bin/python bench/push_claim.py [--backend sqlite|pg] [--pending 10000]

``pending`` rows wait in the outbox: the first 90 % for endpoint A (due first), the rest for
endpoint B. A holds a full window (its first ``window`` rows leased), so a claim can take
only B's rows. Cases: "A full, B due" (the claim should take ``limit`` of B's rows) and
"only A, full" (all rows A's: the claim takes nothing). Each claim runs in a transaction
rolled back after it, so every repetition sees the same outbox; the table gives the median
and the best milliseconds per claim. Run it with another tree's ``src`` on PYTHONPATH for a
same-run comparison.
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
from simgate.store import pushes as outbox

WINDOW = 512
LIMIT = 500
A = "http://a.example:80"
B = "http://b.example:80"
NOW = 10_000


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


async def _claim(conn: AsyncConnection, *, limit: int, full: str) -> list[ClaimedPush]:
    """Up to ``limit`` rows at ``NOW``, with ``full``'s window full."""
    return await outbox.claim(
        conn,
        owner="bench",
        now_ms=NOW,
        lease_until_ms=NOW + 60_000,
        limit=limit,
        window=WINDOW,
        busy={full: WINDOW},
    )


async def _case(backend: str, pending: int, share_a: float, reps: int) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            scratch_url(backend, Path(tmp)) as url,
            opened(bench_settings(Path(tmp), url)) as rt,
        ):
            db = rt.store.db
            n_a = int(pending * share_a)
            await db.write(lambda c: outbox.insert_planned(c, _planned(A, n_a), now_ms=1))
            await db.write(lambda c: outbox.insert_planned(c, _planned(B, pending - n_a), now_ms=2))
            if backend == "pg":
                async with db.engine.connect() as conn:
                    await conn.exec_driver_sql("ANALYZE pushes")
                    await conn.commit()
            await db.write(functools.partial(_claim, limit=WINDOW, full=B))  # A's window
            times: list[float] = []
            got = 0
            for _ in range(reps):
                async with db.engine.connect() as conn:
                    await conn.begin()
                    t0 = time.perf_counter()
                    got = len(await _claim(conn, limit=LIMIT, full=A))
                    times.append((time.perf_counter() - t0) * 1000)
                    await conn.rollback()
            return statistics.median(times), min(times), got


async def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["sqlite", "pg"], default="sqlite")
    ap.add_argument("--pending", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args(argv)
    title = f"push claim, {args.pending} pending, window {WINDOW}, {args.backend}"
    table = Table(title, ["case", "claimed", "median ms", "best ms"], [])
    cases = (("A full, B due", 0.9), ("only A, full", 1.0), ("only B (none full)", 0.0))
    for name, share in cases:
        median, best, got = await _case(args.backend, args.pending, share, args.reps)
        table.rows.append([name, got, round(median, 2), round(best, 2)])
    print(table.render())
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
