"""``simgate run --workers 2`` on PostgreSQL: two HTTP processes on one port (issue 15).

Single-number OpenVox sends from 16 connections at once reach both processes (SO_REUSEPORT);
only the first runs the worker, woken by NOTIFY for what the other accepts. Every message must
reach the sim line exactly once (its journal) and end DELIVERED; a graceful stop of the first
process stops the other too. On SQLite the option is refused with one line.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from simgate.domain.messages import State
from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port
from tests.process.support import (
    add_user,
    counts,
    empty_pg,
    journal_submits,
    open_services,
    sim_line,
    simgate_config,
)
from tests.process.worker_children import both_listening, cpu_seconds, http_children, send_over

pytestmark = pytest.mark.slow

USER, PASSWORD = "gw", "gw-password-1"
SENDS, CONNECTIONS = 400, 16


@pytest.mark.pg
async def test_two_http_processes_accept_and_every_message_is_submitted_once(
    tmp_path: Path, pg_url: str | None
) -> None:
    port = free_port()
    config = simgate_config(tmp_path, port, await empty_pg(pg_url), lines=sim_line(tmp_path))
    await add_user(config, USER, PASSWORD)
    rt = await open_services(load_settings(config), migrate=False)
    try:
        proc = SimgateProcess(["run", "--workers", "2"], workdir=tmp_path, config=config, port=port)
        with proc:
            await asyncio.to_thread(proc.wait_healthy, 60.0)
            await asyncio.to_thread(proc.wait_output, "(2 processes)", 30.0)
            children = http_children(proc.pid)
            assert len(children) == 1, f"expected one extra HTTP process, saw {children}"
            await both_listening(proc)
            child_cpu = cpu_seconds(children[0])
            answers = await send_over(proc.url, USER, PASSWORD, range(SENDS), CONNECTIONS)
            assert all('"code":200' in a.replace(" ", "") for a in answers), answers[:3]
            # The kernel spread the 16 connections over both (all on one: 1 in 2**15); the
            # child, idle before, did its share of the work on the same database.
            assert cpu_seconds(children[0]) - child_cpu > 0.1
            deadline = time.monotonic() + 120
            while (await counts(rt.store)).get(State.DELIVERED, 0) < SENDS:
                assert time.monotonic() < deadline, f"not delivered: {await counts(rt.store)}"
                await asyncio.sleep(0.2)
            assert proc.stop() == 0
            gone = not await asyncio.to_thread(Path(f"/proc/{children[0]}").exists)
            assert gone  # stopped with its parent
        submitted = journal_submits(tmp_path / "sim.journal")
        assert len(submitted) == SENDS
        assert set(submitted.values()) == {1}, "a message was submitted more than once"
        assert await counts(rt.store) == {State.DELIVERED: SENDS}
    finally:
        await rt.close()


def test_more_than_one_process_on_sqlite_is_refused_with_one_line(tmp_path: Path) -> None:
    port = free_port()
    url = f"sqlite+aiosqlite:///{tmp_path / 'simgate.db'}"
    config = simgate_config(tmp_path, port, url, lines=sim_line(tmp_path))
    with SimgateProcess(["run", "--workers", "2"], workdir=tmp_path, config=config) as proc:
        assert proc.wait(60) == 1
        assert "--workers N needs PostgreSQL" in proc.stderr()
