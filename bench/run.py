"""Run the benchmarks and print one table per measurement (``scripts/bench``).

    scripts/bench                      # everything, SQLite and PostgreSQL (when reachable)
    scripts/bench --only accept,dispatch --backend sqlite
    scripts/bench --quick              # smaller numbers, for a smoke run

Each table compares against a baseline measured in the same run; read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import (
    compare,
    foundation,
    http_send,
    idle,
    login_flood,
    processes,
    push_throughput,
    send_cost,
    voice_calls,
    voice_query,
)
from bench.common import Table, pg_reachable

Measure = Callable[[str, Path], Awaitable[Table]]

# Measurements that run once, on SQLite (bench/compare.py: simgate beside Jasmin and Kannel).
SQLITE_ONLY = {"compare"}


def _measures(quick: bool) -> dict[str, Measure]:
    return {
        "accept": lambda b, d: foundation.accept(b, d, 5_000 if quick else 20_000),
        "dispatch": lambda b, d: foundation.dispatch(b, d, 5_000 if quick else 50_000),
        "memory": lambda b, d: foundation.memory(b, d, 50_000 if quick else 1_000_000),
        "crash": lambda b, d: processes.crash(b, d, kills=5 if quick else 20),
        "scale": lambda b, d: processes.scale(b, d, 5_000 if quick else 20_000),
        "calls": lambda b, d: voice_calls.measure(b, d, 5_000 if quick else 20_000),
        "voice_query": lambda b, d: voice_query.measure(b, d, 500_000 if quick else 5_000_000),
        "logins": lambda b, d: login_flood.measure(b, d, 30_000 if quick else 100_000),
        "compare": lambda b, d: compare.scripts_bench(d, 5 if quick else 10),
        "idle": lambda b, d: idle.measure(b, d, seconds=20 if quick else 60, sends=100),
        "http_send": lambda b, d: http_send.measure(b, d, 3 if quick else 8),
        # The same rows against `simgate serve` (no worker beside the API in the process).
        "http_send_serve": lambda b, d: http_send.measure(b, d, 3 if quick else 8, role="serve"),
        # `simgate run --worker-process`: the worker in a child process (cli/worker_child.py),
        # `run`'s default on 2+ CPUs; `--one-process`: HTTP and the worker in one process.
        "http_send_split": lambda b, d: http_send.measure(
            b, d, 3 if quick else 8, role="run --worker-process"
        ),
        "http_send_one": lambda b, d: http_send.measure(
            b, d, 3 if quick else 8, role="run --one-process"
        ),
        # In process, no sockets: a send's CPU beside the ceiling request's, and per commit.
        "send_cost": lambda b, d: send_cost.measure(b, d, 100 if quick else 400),
        "push": lambda b, d: push_throughput.measure(
            b, d, count=3_000 if quick else 10_000, rounds=3
        ),
    }


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "pg", "both"], default="both")
    parser.add_argument(
        "--only", default="", help="comma-separated: " + ", ".join(_measures(False))
    )
    parser.add_argument("--quick", action="store_true", help="smaller numbers")
    args = parser.parse_args(argv)
    measures = _measures(args.quick)
    chosen = [m for m in args.only.split(",") if m] or list(measures)
    unknown = [m for m in chosen if m not in measures]
    if unknown:
        parser.error(f"unknown measurement {unknown[0]!r}")
    backends = ["sqlite", "pg"] if args.backend == "both" else [args.backend]
    if "pg" in backends and not await pg_reachable():
        print("PostgreSQL is not reachable: skipping pg (set SIMGATE_TEST_PG_URL)\n", flush=True)
        backends.remove("pg")
    failed = 0
    for name in chosen:
        for backend in backends:
            if name in processes.ONLY_ON and backend not in processes.ONLY_ON[name]:
                continue
            if name in SQLITE_ONLY and backend != "sqlite":
                continue
            with tempfile.TemporaryDirectory(prefix=f"simgate-bench-{name}-") as tmp:
                t0 = time.perf_counter()
                try:
                    table = await measures[name](backend, Path(tmp))
                except Exception as exc:  # one failed measurement should not hide the others
                    failed += 1
                    print(f"{name} [{backend}]: FAILED: {type(exc).__name__}: {exc}\n", flush=True)
                    continue
                print(table.render(), flush=True)
                load = os.getloadavg()[0]
                print(
                    f"({time.perf_counter() - t0:.0f} s; load average {load:.1f} "
                    f"on {os.cpu_count()} CPUs: other work on the machine slows every row)\n",
                    flush=True,
                )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
