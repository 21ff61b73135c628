"""Push throughput: the push engine vs plain httpx POSTs to the same receiver (issue #3).

    .venv/bin/python bench/push_throughput.py [--count 10000] [--backend sqlite|pg]

A local keep-alive receiver runs in its own process (simgate.testing.push_receiver). In the
same run, this script measures

- the ceiling: ``count`` plain httpx POSTs with the same body, concurrency and client
  settings, nothing else (no database, no signing);
- the engine: ``count`` pushes planned through the real outbox (one per event, each its own
  order key), then sent by one PushSender (what a ``simgate worker`` runs): claim with
  leases, sign (Standard Webhooks), send, record outcomes in batches;
- the engine with ordered keys: 10 pushes per order key, so each key's next push waits for
  the previous one's recorded delivery (the ordering guarantee has a price; this shows it).

Prints a table with pushes per second and the ratio to the ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/push_throughput.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import uvloop

from bench.common import Table, bench_settings, opened, pg_reachable, scratch_url
from simgate.domain.events import PortChanged
from simgate.push.sender import PushSender
from simgate.runtime import Runtime

BODY = json.dumps({"event": "port", "line": "sim", "port": 123456, "up": True, "at": 1}).encode()
CONCURRENCY = 32


def start_receiver() -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simgate.testing.push_receiver"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("port "):
        proc.kill()
        raise RuntimeError(f"receiver did not start: {line!r}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}/events"


async def plain_httpx(url: str, count: int, *, shared: bool) -> float:
    """The same POSTs straight from httpx, CONCURRENCY at a time: one keep-alive client per
    lane (as the engine's lanes; the ceiling), or one client shared by all lanes."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
    n_clients = 1 if shared else CONCURRENCY
    clients = [
        httpx.AsyncClient(limits=limits, timeout=15, trust_env=False) for _ in range(n_clients)
    ]
    try:
        queue = list(range(count))

        async def lane(client: httpx.AsyncClient) -> None:
            while queue:
                queue.pop()
                r = await client.post(url, content=BODY, headers={"content-type": "a/json"})
                assert r.status_code == 200

        start = time.perf_counter()
        await asyncio.gather(*(lane(clients[i % n_clients]) for i in range(CONCURRENCY)))
        return time.perf_counter() - start
    finally:
        for c in clients:
            await c.aclose()


async def plan(rt: Runtime, count: int, per_key: int) -> None:
    store = rt.store
    batch = 1000
    for first in range(0, count, batch):
        events = [
            PortChanged("sim", i // per_key, True, i)
            for i in range(first, min(count, first + batch))
        ]
        await store.db.write(functools.partial(rt.changes.publish, changes=events))


async def engine(url: str, count: int, backend: str, workdir: Path, per_key: int) -> float:
    async with scratch_url(backend, workdir) as db_url:
        push = {
            "test_planner_url": url,
            "test_planner_secret": "whsec_YmVuY2gtc2VjcmV0",
            "allow_cidrs": ["127.0.0.1/32"],
            "per_endpoint_concurrency": CONCURRENCY,
            "idle_poll_seconds": 0.01,
        }
        async with opened(bench_settings(workdir, db_url, push=push)) as rt:
            sv = rt.services
            assert sv is not None
            await plan(rt, count, per_key)
            sender = PushSender(
                queue=sv.pushes.queue,
                settings=sv.pushes.settings,
                clock=rt.clock,
                metrics=sv.metrics,
                guard=sv.pushes.guard,
            )
            start = time.perf_counter()
            await sender.start()
            try:
                while True:
                    st = await sv.pushes.stats()
                    if st.delivered == count:
                        break
                    if st.failed or st.dead or time.perf_counter() - start > 150:
                        rows = await sv.pushes.list(states=["pending"], limit=5)
                        errs = [(r.attempts, r.last_error, r.in_flight) for r in rows]
                        raise RuntimeError(f"push engine stuck: {st} {errs}")
                    await asyncio.sleep(0.1)
                return time.perf_counter() - start
            finally:
                await sender.stop()


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--backend", choices=["sqlite", "pg"], default="sqlite")
    args = parser.parse_args(argv)
    if args.backend == "pg" and not await pg_reachable():
        print("PostgreSQL is not reachable (SIMGATE_TEST_PG_URL)")
        return 1
    proc, url = start_receiver()
    try:
        with tempfile.TemporaryDirectory(prefix="simgate-bench-push-") as tmp:
            n = args.count
            ceiling = await plain_httpx(url, n, shared=False)
            shared = await plain_httpx(url, n, shared=True)
            free = await engine(url, n, args.backend, Path(tmp) / "a", per_key=1)
            ordered = await engine(url, n, args.backend, Path(tmp) / "b", per_key=10)
    finally:
        proc.kill()
        proc.wait(10)
    rows = [
        ["plain httpx POSTs, a client per lane (ceiling)", n, ceiling, n / ceiling, 1.0],
        ["plain httpx POSTs, one shared client", n, shared, n / shared, ceiling / shared],
        ["push engine, 1 push per order key", n, free, n / free, ceiling / free],
        ["push engine, 10 pushes per order key", n, ordered, n / ordered, ceiling / ordered],
    ]
    table = Table(
        f"push throughput, one worker, {args.backend}, keep-alive receiver, "
        f"{CONCURRENCY} connections",
        ["run", "pushes", "seconds", "per second", "ratio to ceiling"],
        [[r[0], r[1], r[2], r[3], f"{r[4]:.2f}"] for r in rows],
        note="ratio = pushes per second / the ceiling's POSTs per second (same count, same run)",
    )
    print(table.render())
    return 0


if __name__ == "__main__":
    sys.exit(uvloop.run(main(sys.argv[1:])))
