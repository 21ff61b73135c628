"""Push throughput: the push engine vs plain httpx POSTs to the same receiver (issues 3, 15).

    .venv/bin/python bench/push_throughput.py [--count 10000] [--backend sqlite|pg] [--rounds 3]
    scripts/bench --only push --backend sqlite

A local keep-alive receiver runs in its own process (simgate.testing.push_receiver). In the
same run, this script measures

- the ceiling: ``count`` plain httpx POSTs with the same body, concurrency and client
  settings, nothing else (no database, no signing);
- the engine: ``count`` pushes planned through the real outbox (one per event, each its own
  order key), then sent by one PushSender (what a ``simgate worker`` runs): claim with
  leases, sign (Standard Webhooks), send, record outcomes in batches;
- the engine with ordered keys: 10 pushes per order key, so each key's next push waits for
  the previous one's recorded delivery (the ordering guarantee has a price; this shows it);
- with ``--shared``, plain httpx through one client shared by every lane (why push/lanes.py
  gives each lane a client of its own).

The machine is shared (issue 15: "the ceiling itself was depressed"), so one pass proves
little: each of ``rounds`` rounds measures the ceiling and both engine runs back to back (in
turns: ceiling first, then last, so drift during a round does not always favour one side),
and the table gives medians: of the rates, and of each round's ratio to that round's own
ceiling. CPU is this process's while it sends (the engine's database creation and planning
are left out), per 1,000 pushes; "all CPU" adds the receiver's and, on a PostgreSQL server on
this machine, its processes serving the run's database. On a loaded machine every process
competes for the same cores, so what the engine costs the server shows in its ratio: "all
CPU" shows it directly, and moves less with the load than the rates do.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/push_throughput.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import uvloop

from bench.common import PG_ADMIN_URL, Table, bench_settings, opened, pg_reachable, scratch_url
from simgate.domain.events import PortChanged
from simgate.push.sender import PushSender
from simgate.runtime import Runtime
from simgate.store import Database

BODY = json.dumps({"event": "port", "line": "sim", "port": 123456, "up": True, "at": 1}).encode()
CONCURRENCY = 32


@dataclass(frozen=True, slots=True)
class Pass:
    seconds: float
    cpu_seconds: float  # this process, every thread (the receiver is another process)
    # With the receiver's and the database server's (None where they cannot be read).
    all_cpu_seconds: float | None


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu(pids: Sequence[int], *, name: str | None = None) -> float | None:
    """User + system CPU seconds of local processes (Linux /proc), None when one cannot be
    read; with ``name``, also when one is not a process of that name (a pid of a server on
    another machine, or one that exited and was reused)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return None
        if name is not None and not comm.startswith(name):
            return None
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def _local_pg() -> bool:
    host = PG_ADMIN_URL.split("@", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost", "[::1]")


async def server_pids(db: Database) -> list[int]:
    """The PostgreSQL processes serving this run's database, when the server is local."""
    if db.is_sqlite or not _local_pg():
        return []
    async with db.read() as conn:
        rows = await conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        )
        return [int(pid) for (pid,) in rows]


class CpuMeter:
    """This process's CPU, and with the receiver's and the database server's (``Pass``)."""

    def __init__(self, receiver: int, servers: Sequence[int] = ()) -> None:
        self._receiver = receiver
        self._servers = list(servers)
        self._start = time.perf_counter()
        self._cpu = time.process_time()
        self._others = self._other_cpu()

    def _other_cpu(self) -> float | None:
        receiver = process_cpu([self._receiver])
        servers = process_cpu(self._servers, name="postgres")
        return None if receiver is None or servers is None else receiver + servers

    async def stop(self, servers: Callable[[], Awaitable[list[int]]] | None = None) -> Pass:
        """The pass. ``servers`` names the server's processes at the end: a pool may have
        opened connections meanwhile, and their processes count from zero."""
        seconds, cpu = time.perf_counter() - self._start, time.process_time() - self._cpu
        after = self._other_cpu()
        new = [p for p in await servers() if p not in self._servers] if servers else []
        more = process_cpu(new, name="postgres")
        if self._others is None or after is None or more is None:
            return Pass(seconds, cpu, None)
        return Pass(seconds, cpu, cpu + after + more - self._others)


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


async def plain_httpx(url: str, count: int, *, shared: bool, receiver: int) -> Pass:
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

        meter = CpuMeter(receiver)
        await asyncio.gather(*(lane(clients[i % n_clients]) for i in range(CONCURRENCY)))
        return await meter.stop()
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


async def engine(
    url: str, count: int, backend: str, workdir: Path, per_key: int, *, receiver: int
) -> Pass:
    """Plan ``count`` pushes, then time one sender until all are delivered (the sending
    only: the database's creation and the planning are not counted, in time or CPU)."""
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
            db = rt.store.db
            meter = CpuMeter(receiver, await server_pids(db))
            start = time.perf_counter()
            await sender.start()
            try:
                checked = start
                while True:
                    # Counting the table scans it: only once a second, or once every push
                    # has had its attempt (then at a short pace: the end is near).
                    done = sender.attempted >= count
                    if done or time.perf_counter() - checked > 1.0:
                        checked = time.perf_counter()
                        st = await sv.pushes.stats()
                        if st.delivered == count:
                            break
                        if st.failed or st.dead or time.perf_counter() - start > 300:
                            rows = await sv.pushes.list(states=["pending"], limit=5)
                            errs = [(r.attempts, r.last_error, r.in_flight) for r in rows]
                            raise RuntimeError(f"push engine stuck: {st} {errs}")
                    await asyncio.sleep(0.01 if done else 0.05)
                return await meter.stop(functools.partial(server_pids, db))
            finally:
                await sender.stop()


ROWS = {
    "ceiling": "plain httpx POSTs, a client per lane (ceiling)",
    "shared": "plain httpx POSTs, one shared client",
    "free": "push engine, 1 push per order key",
    "ordered": "push engine, 10 pushes per order key",
}


async def measure(
    backend: str, workdir: Path, *, count: int, rounds: int = 3, shared: bool = False
) -> Table:
    """``rounds`` rounds of ceiling + engine runs (in turns), medians (module docstring)."""
    proc, url = start_receiver()
    rid = proc.pid
    runs: dict[str, Callable[[int], Awaitable[Pass]]] = {
        "ceiling": lambda _r: plain_httpx(url, count, shared=False, receiver=rid),
        "free": lambda r: engine(
            url, count, backend, workdir / f"free{r}", per_key=1, receiver=rid
        ),
        "ordered": lambda r: engine(
            url, count, backend, workdir / f"ordered{r}", per_key=10, receiver=rid
        ),
    }
    passes: dict[str, list[Pass]] = {name: [] for name in runs}
    try:
        await plain_httpx(url, min(count, 1000), shared=False, receiver=rid)  # warm up
        for r in range(rounds):
            order = list(runs) if r % 2 == 0 else list(reversed(runs))
            for name in order:
                passes[name].append(await runs[name](r))
        if shared:  # once: it is slow, and only says why lanes exist
            passes["shared"] = [await plain_httpx(url, count, shared=True, receiver=rid)]
    finally:
        proc.kill()
        proc.wait(10)
    ceiling = passes["ceiling"]
    rows: list[Sequence[Any]] = []
    for name, got in passes.items():
        # Each round's ratio to the ceiling of that same round (the shared run: the median).
        if name == "shared":
            ratios = [statistics.median(c.seconds for c in ceiling) / got[0].seconds]
        else:
            ratios = [c.seconds / p.seconds for c, p in zip(ceiling, got, strict=True)]
        rate = statistics.median(count / p.seconds for p in got)
        cpu = statistics.median(1000 * p.cpu_seconds / count for p in got)
        alls = [p.all_cpu_seconds for p in got]
        all_cpu = "-" if None in alls else statistics.median(1000 * (a or 0) / count for a in alls)
        spread = ", ".join(f"{x:.2f}" for x in ratios)
        rows.append(
            [ROWS[name], count, rate, cpu, all_cpu, f"{statistics.median(ratios):.2f}", spread]
        )
    return Table(
        f"push throughput [{backend}]: one worker, keep-alive receiver, {CONCURRENCY} "
        f"connections, median of {rounds} round(s)",
        [
            "run",
            "pushes",
            "per second",
            "CPU s per 1,000",
            "all CPU s per 1,000",
            "ratio to ceiling",
            "each round",
        ],
        rows,
        note="ratio = a round's pushes per second / that round's ceiling POSTs per second; "
        "issue 15 target: >= 0.8 for 1 push per order key. all CPU = with the receiver's "
        "and the local database server's",
    )


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--backend", choices=["sqlite", "pg"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shared", action="store_true", help="also one shared client (slow)")
    args = parser.parse_args(argv)
    if args.backend == "pg" and not await pg_reachable():
        print("PostgreSQL is not reachable (SIMGATE_TEST_PG_URL)")
        return 1
    with tempfile.TemporaryDirectory(prefix="simgate-bench-push-") as tmp:
        table = await measure(
            args.backend, Path(tmp), count=args.count, rounds=args.rounds, shared=args.shared
        )
    print(table.render())
    return 0


if __name__ == "__main__":
    sys.exit(uvloop.run(main(sys.argv[1:])))
