"""The crash run and the scale run, shared by the process tests and by ``bench/``.

Each returns what happened (states, journal, timings); the tests and the benchmark decide
what to assert or print.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from simgate.domain.messages import State
from simgate.settings import load_settings
from simgate.store import Store
from simgate.store.tables import messages
from simgate.testing.procs import SimgateProcess, free_port
from tests.process.support import (
    counts,
    enqueue,
    journal_submits,
    make_account,
    open_services,
    simgate_config,
    states,
)

UNSETTLED = (State.QUEUED, State.SUBMITTING, State.SENT)

# `simgate run`'s two modes, named so that a test means the same on any machine (the default
# is the worker child on SQLite with 2+ CPUs, else one process: cli/worker_child.py worker_mode).
SPLIT = ("run", "--worker-process")  # a kill -9 of `run` hits the HTTP parent
ONE_PROCESS = ("run", "--one-process")  # a kill -9 of `run` hits the worker too
# What the parent logs when its worker child ended by SIGKILL (cli/worker_child.py).
CHILD_KILLED = "ended (exit -9)"


@dataclass
class CrashRun:
    accepted: list[int] = field(default_factory=list)
    final: dict[int, State] = field(default_factory=dict)
    submitted: Counter[int] = field(default_factory=Counter)
    in_flight_at_kill: list[int] = field(default_factory=list)
    final_exit: int | None = None
    seconds: float = 0.0


# The sim line of the crash runs: 20 ms submits keep work in flight when the kill comes.
CRASH_LINE: dict[str, Any] = {
    "seed": 7,
    "submit_latency_ms": 20,
    "report_delay_ms": 300,
    "delivery_ratio": 0.9,
    "failure_ratio": 0.02,
}

# The late-reports crash window's line (tests/process/test_late_reports.py, the worker child's
# run of it in test_worker_child.py): every submit leaves, so each has a report, and some
# reports say failed.
LATE_REPORTS_LINE: dict[str, Any] = {
    "seed": 9,
    "submit_latency_ms": 5,
    "delivery_ratio": 0.8,
    "failure_ratio": 0.0,
}


def crash_config(
    tmp_path: Path,
    journal: Path,
    port: int,
    *,
    batch_size: int = 50,
    line: dict[str, Any] | None = None,
    **sim: Any,
) -> Path:
    """A ``simgate run`` config for a kill test: short leases and a busy reaper keep the run
    short. The sim line journals to ``journal`` with ``line`` (default :data:`CRASH_LINE`)
    updated by ``sim``."""
    return simgate_config(
        tmp_path,
        port,
        worker={
            "lease_seconds": 1,
            "batch_size": batch_size,
            "reaper_interval_seconds": 0.25,
            "idle_poll_seconds": 0.02,
        },
        lines={
            "sim": {
                "driver": "sim",
                "ports": 8,
                "journal": str(journal),
                **(CRASH_LINE if line is None else line),
                **sim,
            }
        },
    )


async def run_to_fault_point(
    tmp_path: Path, config: Path, port: int, env: dict[str, str], name: str
) -> int:
    """One ``simgate run --one-process`` with a test fault point in ``env``
    (dispatch/worker.py), until the fault point SIGKILLs it; its exit (asserted: by that
    SIGKILL, not ending on its own). In one process: in ``run``'s default mode the fault
    point would kill the worker child, which its parent starts again."""
    with SimgateProcess(
        list(ONE_PROCESS), workdir=tmp_path, config=config, port=port, env=env, name=name
    ) as proc:
        code = await asyncio.to_thread(proc.wait, 60.0)
        assert code == -signal.SIGKILL, proc.stderr()[-2000:]
    return code


async def crash_run(
    tmp_path: Path,
    *,
    seed: int,
    kills: int,
    first: int,
    between: int,
    max_alive_s: float = 1.2,
    role: tuple[str, ...] = SPLIT,
) -> CrashRun:
    """Start ``simgate run`` (``role``), SIGKILL it ``kills`` times at random points, then
    let it settle. With :data:`SPLIT` the kill hits the HTTP parent: its worker child gets
    SIGTERM from the kernel (PDEATHSIG) and the next run waits for it to stop."""
    t0 = time.monotonic()
    rng = random.Random(seed)
    journal = tmp_path / "sim.journal"
    port = free_port()
    config = crash_config(tmp_path, journal, port)
    out = CrashRun()
    rt = await open_services(load_settings(config))
    assert rt.services is not None
    sv = rt.services
    try:
        account = await make_account(sv)
        out.accepted = await enqueue(sv, account, first, batch=500)
        for k in range(kills):
            proc = SimgateProcess(
                list(role), workdir=tmp_path, config=config, port=port, name=f"k{k}"
            )
            with proc:
                await asyncio.to_thread(proc.wait_healthy, 30.0)
                if role != ONE_PROCESS:  # the kill lands while the child dispatches
                    await asyncio.to_thread(proc.wait_output, "simgate worker running", 60.0)
                await asyncio.sleep(rng.uniform(0.0, max_alive_s))
                if proc.poll() is not None:
                    raise RuntimeError(f"simgate died on its own:\n{proc.stderr()[-2000:]}")
                proc.kill()
            now = await counts(rt.store)
            out.in_flight_at_kill.append(now.get(State.SUBMITTING, 0) + now.get(State.SENT, 0))
            # More work arrives while simgate is down (committed, so it must not be lost).
            out.accepted += await enqueue(
                sv, account, between, batch=min(between, 1000), start=len(out.accepted)
            )
        with SimgateProcess(
            list(role), workdir=tmp_path, config=config, port=port, name="final"
        ) as proc:
            await asyncio.to_thread(proc.wait_healthy, 30.0)
            deadline = time.monotonic() + 30 + len(out.accepted) / 500
            while True:
                now = await counts(rt.store)
                if not any(now.get(s, 0) for s in UNSETTLED):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"did not settle: {now}")
                await asyncio.sleep(0.2)
            out.final_exit = proc.stop()
        out.final = await states(rt.store, out.accepted)
    finally:
        await rt.close()
    out.submitted = journal_submits(journal)
    out.seconds = time.monotonic() - t0
    return out


# uvicorn re-raises the SIGTERM it handled, so a clean stop ends by that signal.
CLEAN_EXITS = (0, -signal.SIGTERM)


@dataclass
class ScaleRun:
    ids: list[int] = field(default_factory=list)
    final: dict[State, int] = field(default_factory=dict)
    submitted: Counter[int] = field(default_factory=Counter)
    lease_owners: set[str] = field(default_factory=set)
    health: list[Any] = field(default_factory=list)
    queue_depth: list[float] = field(default_factory=list)
    seconds_to_delivered: float = 0.0


async def _watch_owners(store: Store, seen: set[str], stop: asyncio.Event) -> None:
    """Which workers hold leases, sampled while the run goes on."""
    while not stop.is_set():
        async with store.db.read() as conn:
            rows = await conn.execute(
                select(messages.c.lease_owner)
                .where(messages.c.state == int(State.SUBMITTING))
                .distinct()
            )
            seen.update(r[0] for r in rows if r[0])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


async def scale_run(
    tmp_path: Path, *, pg_url: str, total: int, workers: int = 2, apis: int = 2
) -> ScaleRun:
    """``workers`` x ``simgate worker`` and ``apis`` x ``simgate serve`` on one database."""
    journal = tmp_path / "sim.journal"
    config = simgate_config(
        tmp_path,
        None,
        pg_url,
        # Leases of 200 so that no worker takes the whole queue in one go.
        worker={"batch_size": 200, "idle_poll_seconds": 0.02},
        lines={"sim": {"driver": "sim", "ports": 16, "journal": str(journal)}},
    )
    rt = await open_services(load_settings(config))
    assert rt.services is not None
    sv = rt.services
    procs = [
        SimgateProcess(["worker"], workdir=tmp_path, config=config, name=f"worker-{i}")
        for i in range(workers)
    ] + [
        SimgateProcess(
            ["serve"], workdir=tmp_path, config=config, port=free_port(), name=f"api-{i}"
        )
        for i in range(apis)
    ]
    out = ScaleRun()
    stop = asyncio.Event()
    try:
        for p in procs:
            p.start()
        for p in procs[:workers]:
            await asyncio.to_thread(p.wait_output, "simgate worker running", 60.0)
        for p in procs[workers:]:
            await asyncio.to_thread(p.wait_healthy, 60.0)
        watcher = asyncio.create_task(_watch_owners(rt.store, out.lease_owners, stop))
        account = await make_account(sv)
        t0 = time.monotonic()
        out.ids = await enqueue(sv, account, total, batch=1000)
        deadline = time.monotonic() + 120 + total / 200
        while (await counts(rt.store)).get(State.DELIVERED, 0) < total:
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0].name} died:\n{dead[0].stderr()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"not delivered in time: {await counts(rt.store)}")
            await asyncio.sleep(0.5)
        out.seconds_to_delivered = time.monotonic() - t0
        stop.set()
        await watcher
        async with httpx.AsyncClient(timeout=5) as client:
            for p in procs[workers:]:
                out.health.append((await client.get(p.url + "/healthz")).json())
                out.queue_depth.append(_queue_depth((await client.get(p.url + "/metrics")).text))
        for p in procs:
            p.stop()
        out.final = await counts(rt.store)
    finally:
        stop.set()
        for p in procs:
            p.kill()
        await rt.close()
    out.submitted = journal_submits(journal)
    return out


def _queue_depth(metrics_text: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith("simgate_queue_depth "):
            return float(line.split()[1])
    raise AssertionError(f"no simgate_queue_depth in /metrics: {metrics_text[:300]}")
