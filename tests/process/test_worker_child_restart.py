"""A ``simgate run --worker-process`` SIGKILLed and started again at once (issue 15).

The killed parent could not stop its worker child: the kernel sends it SIGTERM (PDEATHSIG),
and it spends up to 15 s on its graceful stop (the batch in flight, then its lines). The new
``run`` must not start its own child beside it (two workers on one data_dir: an SMPP line
bound twice, a modem port opened twice): it waits for the old child to end first (the pid
file in data_dir, cli/worker_child.py). Real processes; the sim line's submits take seconds,
so the old child's stop outlasts the new parent's start-up.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from simgate.domain.messages import State
from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port
from tests.process.runs import CLEAN_EXITS
from tests.process.support import (
    counts,
    enqueue,
    journal_submits,
    make_account,
    open_services,
    sim_line,
    simgate_config,
)
from tests.process.worker_children import RUN, running, started, worker_children

pytestmark = pytest.mark.slow
SUBMIT_MS = 13_000  # one batch in flight: the old child's graceful stop lasts this long (< 15 s)


async def test_a_restarted_run_waits_for_the_old_worker_child(tmp_path: Path) -> None:
    port = free_port()
    journal = tmp_path / "sim.journal"
    config = simgate_config(
        tmp_path,
        port,
        worker={"idle_poll_seconds": 0.05, "idle_max_seconds": 0.2},
        lines=sim_line(tmp_path, submit_latency_ms=SUBMIT_MS),
    )
    rt = await open_services(load_settings(config))
    assert rt.services is not None
    try:
        account = await make_account(rt.services)
        ids = await enqueue(rt.services, account, 8)
        first = SimgateProcess(RUN, workdir=tmp_path, config=config, port=port, name="first")
        with first:
            old = await started(first)
            deadline = time.monotonic() + 60
            while not (await counts(rt.store)).get(State.SUBMITTING):  # its batch in flight
                assert time.monotonic() < deadline, "the worker child never leased"
                await asyncio.sleep(0.05)
            # Held (SIGSTOP) so that its stop outlasts the new run's start-up whatever the
            # timing: left running, it sometimes ended before the new parent even looked
            # (the test then proved nothing). The kernel's PDEATHSIG SIGTERM waits for it.
            _stop_outside_a_write(old, tmp_path / "data" / "simgate.db")
            first.kill()  # SIGKILL: the old child is left stopping on its own
        second = SimgateProcess(RUN, workdir=tmp_path, config=config, port=port, name="second")
        with second:
            try:
                # Start-up (imports, migrations) then the wait's log line: 10 s was once too
                # short for a start-up on a loaded CI machine. stop_predecessor's 15 s before
                # its SIGKILL count from that line, and this loop reads the line within 20 ms.
                deadline = time.monotonic() + 40
                while "is still stopping: waiting for it" not in second.stderr():
                    assert time.monotonic() < deadline, (
                        f"the new run did not wait: {second.stderr()[-2000:]}"
                    )
                    assert running(old)
                    assert worker_children(second.pid) == [], "two worker children at once"
                    await asyncio.sleep(0.02)
            finally:
                os.kill(old, signal.SIGCONT)  # its graceful stop goes on
            while running(old):  # while the old child stops: no new one
                assert worker_children(second.pid) == [], "two worker children at once"
                await asyncio.sleep(0.02)
            await started(second)
            assert "is still stopping: waiting for it" in second.stderr()
            # The old child stopped gracefully: it recorded its batch (below), SIGTERM's
            # default action would have left it SUBMITTING, then UNKNOWN.
            assert second.stop() in CLEAN_EXITS
        final = await counts(rt.store)
    finally:
        await rt.close()
    assert final.get(State.SUBMITTING, 0) == final.get(State.UNKNOWN, 0) == 0, final
    submitted = journal_submits(journal)
    assert set(submitted) == set(ids)
    assert {mid: n for mid, n in submitted.items() if n > 1} == {}, "submitted twice"


def _stop_outside_a_write(pid: int, db: Path) -> None:
    """SIGSTOP ``pid`` at a moment it holds no SQLite write lock: stopped inside one of its
    idle lease transactions, it kept the lock, and the new run's start-up probe refused the
    database after 5 s (as it should for a hung writer; not what this test is about)."""
    for _ in range(200):
        os.kill(pid, signal.SIGSTOP)
        probe = sqlite3.connect(db, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.01)
        finally:
            probe.close()
    raise AssertionError("the worker child never left its write lock")
