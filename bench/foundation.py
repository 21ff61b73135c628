"""Foundation benchmarks (issue 2): accept rate, dispatch rate, memory with 1M messages.

Each measurement compares against a baseline measured in the same run:
- accept: ``SendService.send`` with 1 000 recipients vs a raw driver ``executemany`` INSERT
  of the same rows, one transaction per 1 000 either way (aim: ratio >= 0.5);
- dispatch: QUEUED -> DELIVERED through the sim line at zero latency, one in-process worker,
  vs the bare SQL floor of the same path (one UPDATE per batch straight to DELIVERED);
- memory: peak RSS of ``simgate run`` with 1 000 000 stored messages vs an empty database
  (aim: < 300 MB), while it answers /healthz and /metrics and runs a worker cycle.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection
from tests.support.new_messages import new_message

from bench.common import (
    Table,
    bench_settings,
    enqueue,
    opened,
    recipients,
    scratch_url,
    wait_state,
)
from simgate.domain.ids import compose
from simgate.domain.messages import State
from simgate.domain.records import NewMessage
from simgate.services.sending import SendRequest
from simgate.store.tables import messages
from simgate.testing.procs import SimgateProcess, free_port, write_config

BATCH = 1_000


def _row(m: NewMessage, now_ms: int) -> dict[str, Any]:
    d = dataclasses.asdict(m)
    d.update(
        state=int(State.QUEUED),
        attempts=0,
        next_attempt_ms=now_ms,
        charge_micros=m.price_micros * m.parts,
        accepted_ms=now_ms,
        queued_ms=now_ms,
        updated_ms=now_ms,
    )
    return d


async def accept(backend: str, workdir: Path, total: int) -> Table:
    """Messages accepted per second through the service layer vs raw executemany."""
    async with scratch_url(backend, workdir) as url, opened(bench_settings(workdir, url)) as rt:
        sv = rt.services
        assert sv is not None
        account = await sv.accounts.create_account(name="bench", balance="1000000")
        await enqueue(sv, account, BATCH)  # warm-up: caches, id block, statement cache
        cols = [c.name for c in messages.columns if c.name in _row_keys()]
        marks = ", ".join("?" if rt.store.db.is_sqlite else f"${i + 1}" for i in range(len(cols)))
        sql = f"INSERT INTO messages ({', '.join(cols)}) VALUES ({marks})"
        t_service = t_raw = 0.0
        for first in range(0, total, BATCH):
            req = SendRequest(
                account=account, dialect="bench", text="bench", recipients=recipients(first, BATCH)
            )
            t0 = time.perf_counter()
            await sv.sending.send(req)
            t_service += time.perf_counter() - t0
            # The same rows, with ids of their own, straight into the driver (untimed prep).
            now = sv.clock.now_ms()
            ids = await rt.store.new_ids(BATCH, now)
            rows = [
                tuple(_row(_new(mid, account.id, r.number, now), now)[c] for c in cols)
                for mid, r in zip(ids, req.recipients, strict=True)
            ]

            async def raw(conn: AsyncConnection, rows: list[tuple[Any, ...]] = rows) -> None:
                await conn.exec_driver_sql(sql, rows)

            t0 = time.perf_counter()
            await rt.store.db.write_direct(raw)
            t_raw += time.perf_counter() - t0
    svc, base = total / t_service, total / t_raw
    return Table(
        f"accept [{backend}]: {total:,} messages in requests of {BATCH:,} recipients",
        ["path", "msgs/s", "ratio to raw"],
        [["raw executemany (baseline)", base, 1.0], ["SendService.send", svc, svc / base]],
        "aim: ratio >= 0.5",
    )


def _new(mid: int, account_id: int, number: str, now_ms: int) -> NewMessage:
    return new_message(
        mid,
        account_id,
        dialect="bench",
        recipient=number,
        text="bench",
        validity_until_ms=now_ms + 86_400_000,
    )


def _row_keys() -> set[str]:
    return set(_row(_new(1, 1, "1", 0), 0))


async def _dispatch_once(
    backend: str, workdir: Path, total: int, *, hooks: bool, dialect: str = "bench"
) -> tuple[float, float]:
    """Messages per second, and the process's CPU microseconds per message, of one run, of
    messages sent through ``dialect`` ("bench": one no push format reads)."""
    async with scratch_url(backend, workdir) as url:
        settings = bench_settings(workdir, url)
        async with opened(settings, role="worker") as rt:
            sv = rt.services
            assert sv is not None
            if not hooks:
                # What the core costs without the event bus (numbering, push formats).
                rt.changes.clear()
            account = await sv.accounts.create_account(name="bench", balance="1000000")
            await enqueue(sv, account, total, dialect=dialect)
            cpu0 = time.process_time()
            await rt.start_worker()
            gc.freeze()  # as `simgate run` does once started (cli/serve.py)
            took = await wait_state(rt.store, State.DELIVERED, total, limit_s=600)
            # Up to the poll that saw the end (at most 0.5 s of an idle worker more).
            cpu = time.process_time() - cpu0
            return total / took, cpu / total * 1e6


async def dispatch(backend: str, workdir: Path, total: int) -> Table:
    """QUEUED -> DELIVERED per second, one worker in-process, sim line at zero latency."""
    rate, rate_cpu = await _dispatch_once(backend, workdir / "d", total, hooks=True)
    bare, bare_cpu = await _dispatch_once(backend, workdir / "b", total, hooks=False)
    # OpenVox messages: its push format reads them, but no account has a push URL (the
    # worker of `simgate run` under OpenVox sends, issue 15).
    ov, ov_cpu = await _dispatch_once(backend, workdir / "o", total, hooks=True, dialect="openvox")
    async with scratch_url(backend, workdir / "f") as url:
        settings = bench_settings(workdir / "f", url)
        async with opened(settings) as rt:
            sv = rt.services
            assert sv is not None
            account = await sv.accounts.create_account(name="bench", balance="1000000")
            ids = await enqueue(sv, account, total)
            size = settings.worker.batch_size
            stmt = (
                update(messages)
                .where(messages.c.id == bindparam("b_id"))
                .values(state=int(State.DELIVERED), delivered_ms=bindparam("b_t"))
            )
            t0, cpu0 = time.perf_counter(), time.process_time()
            for i in range(0, total, size):
                chunk = [{"b_id": mid, "b_t": 1} for mid in ids[i : i + size]]

                async def floor(conn: AsyncConnection, chunk: list[dict[str, int]] = chunk) -> None:
                    await conn.execute(stmt, chunk)

                await rt.store.db.write(floor)
            floor_s = time.perf_counter() - t0
            floor_cpu = (time.process_time() - cpu0) / total * 1e6
    base = total / floor_s
    return Table(
        f"dispatch [{backend}]: {total:,} messages QUEUED -> DELIVERED, one worker, "
        f"batch_size {settings.worker.batch_size}",
        ["path", "msgs/s", "ratio to floor", "CPU us per msg"],
        [
            ["SQL floor: 1 UPDATE per batch (baseline)", base, 1.0, floor_cpu],
            ["Dispatcher + sim line", rate, rate / base, rate_cpu],
            ["  same, event hooks off (no push planning)", bare, bare / base, bare_cpu],
            ["  same, OpenVox messages: push formats on, no URLs", ov, ov / base, ov_cpu],
        ],
        f"aim: >= 5,000 msgs/s on SQLite; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs",
    )


async def _bulk_load(backend: str, url: str, settings: Any, count: int) -> None:
    """``count`` DELIVERED messages from 30 days ago, loaded with the driver directly."""
    async with opened(settings) as rt:
        sv = rt.services
        assert sv is not None
        account = await sv.accounts.create_account(name="bench", balance="1000000")
        await enqueue(sv, account, BATCH)  # work for the worker cycle of the measured process
        if not count:
            return
        base_ms = sv.clock.now_ms() - 30 * 86_400_000
        keys = sorted(_row_keys())
        cols = [*keys]
        chunk = 50_000
        for first in range(0, count, chunk):
            rows = []
            for i in range(first, min(count, first + chunk)):
                at = base_ms + i * 10
                d = _row(_new(compose(at, i), account.id, f"86139{i:08d}", at), at)
                d.update(state=int(State.DELIVERED), delivered_ms=at + 500, sent_ms=at + 100)
                rows.append(tuple(d[c] for c in cols))
            if backend == "sqlite":
                marks = ", ".join("?" * len(cols))
                sql = f"INSERT INTO messages ({', '.join(cols)}) VALUES ({marks})"

                async def load(
                    conn: AsyncConnection, rows: list[Any] = rows, sql: str = sql
                ) -> None:
                    await conn.exec_driver_sql(sql, rows)

                await rt.store.db.write_direct(load)
            else:

                async def copy(conn: AsyncConnection, rows: list[Any] = rows) -> None:
                    raw = await conn.get_raw_connection()
                    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                        "messages", records=rows, columns=cols
                    )

                await rt.store.db.write_direct(copy)


def _peak_rss_mb(pid: int) -> float:
    """VmHWM: the resident set's high-water mark since the process started."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


async def _measure_run(workdir: Path, settings: Any) -> float:
    port = free_port()
    config = write_config(
        workdir / "simgate.toml",
        {
            "data_dir": str(settings.data_dir),
            "database_url": settings.database_url,
            "master_key": settings.master_key,
            "log_level": "warning",
            "demo": {"create": False},
            "http": {"port": port},
        },
    )
    # One process: the peak RSS read below is of one pid (`run`'s default puts the worker in a
    # child, whose memory this would miss), and the rows stay comparable with earlier runs.
    role = ["run", "--one-process"]
    with SimgateProcess(role, workdir=workdir, config=config, port=port, name="rss") as proc:
        await asyncio.to_thread(proc.wait_healthy, 120.0)
        async with httpx.AsyncClient(timeout=60) as client:
            for _ in range(3):
                assert (await client.get(proc.url + "/healthz")).status_code == 200
                assert (await client.get(proc.url + "/metrics")).status_code == 200
            deadline = time.monotonic() + 120
            while "simgate_queue_depth 0.0" not in (await client.get(proc.url + "/metrics")).text:
                if time.monotonic() > deadline:
                    raise TimeoutError("the worker cycle did not empty the queue")
                await asyncio.sleep(0.2)
        peak = _peak_rss_mb(proc.pid)
        proc.stop()
    return peak


async def memory(backend: str, workdir: Path, stored: int) -> Table:
    rows: list[tuple[str, float, float]] = []
    for count in (0, stored):
        wd = workdir / f"m{count}"
        wd.mkdir(parents=True, exist_ok=True)
        async with scratch_url(backend, wd) as url:
            settings = bench_settings(wd, url)
            t0 = time.perf_counter()
            await _bulk_load(backend, url, settings, count)
            load_s = time.perf_counter() - t0
            peak = await _measure_run(wd, settings)
            rows.append((f"{count:,} stored messages", peak, load_s))
    base = rows[0][1]
    return Table(
        f"memory [{backend}]: peak RSS of `simgate run` (healthz, metrics, one worker cycle)",
        ["database", "peak RSS MB", "load s", "ratio to empty"],
        [[r[0], r[1], r[2], r[1] / base] for r in rows],
        "aim: < 300 MB with 1,000,000 stored messages",
    )
