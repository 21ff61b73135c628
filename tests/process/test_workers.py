"""``simgate run --workers 2`` on PostgreSQL: two HTTP processes on one port (issue 15).

Single-number OpenVox sends from 16 connections at once reach both processes (SO_REUSEPORT);
only the first runs the worker, woken by NOTIFY for what the other accepts. Every message must
reach the sim line exactly once (its journal) and end DELIVERED; a graceful stop of the first
process stops the other too. On SQLite the option is refused with one line.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from simgate.domain.messages import State
from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port, write_config
from tests.conftest import PG_ADMIN_URL, need_peer
from tests.process.support import counts, journal_submits, open_services
from tests.support.pg import truncate_pg

pytestmark = pytest.mark.slow

USER, PASSWORD = "gw", "gw-password-1"
SENDS, CONNECTIONS = 400, 16


def _children(pid: int) -> list[int]:
    """The extra HTTP processes of ``pid`` (not its worker child, cli/worker_child.py)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text(encoding="ascii")
                argv = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid and b"--http-child" in argv:
                out.append(int(entry))
    return out


def _cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _both_listening(proc: SimgateProcess) -> None:
    """Until the child printed its own "listening" line too (stdout is shared)."""
    deadline = time.monotonic() + 60
    while proc.stdout().count("listening on") < 2:
        assert time.monotonic() < deadline, proc.stdout()
        await asyncio.sleep(0.1)


def _config(tmp_path: Path, url: str, port: int) -> dict[str, Any]:
    return {
        "data_dir": str(tmp_path / "data"),
        "database_url": url,
        "master_key": "workers-test-master-key-0123456789",
        "log_level": "warning",
        "demo": {"create": False},
        "http": {"port": port},
        "lines": {"sim": {"driver": "sim", "ports": 8, "journal": str(tmp_path / "sim.journal")}},
    }


async def _send_all(base: str) -> list[str]:
    answers: list[str] = []

    async def client(c: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for i in range(c, SENDS, CONNECTIONS):
                body = {
                    "username": USER,
                    "password": PASSWORD,
                    "dest_num": f"86138{i:08d}",
                    "msg": f"workers {i}",
                }
                answers.append((await http.post("/sms/send", json=body)).text)

    await asyncio.gather(*(client(c) for c in range(CONNECTIONS)))
    return answers


@pytest.mark.pg
async def test_two_http_processes_accept_and_every_message_is_submitted_once(
    tmp_path: Path, pg_url: str | None
) -> None:
    need_peer("postgresql", pg_url is not None, PG_ADMIN_URL)
    assert pg_url is not None
    await truncate_pg(pg_url)
    port = free_port()
    data = _config(tmp_path, pg_url, port)
    config = write_config(tmp_path / "simgate.toml", data)
    rt = await open_services(load_settings(config))
    try:
        assert rt.services is not None
        account = await rt.services.accounts.create_account(name="load", balance="1000000")
        await rt.services.accounts.create_user(account.id, username=USER, password=PASSWORD)
        proc = SimgateProcess(["run", "--workers", "2"], workdir=tmp_path, config=config, port=port)
        with proc:
            await asyncio.to_thread(proc.wait_healthy, 60.0)
            await asyncio.to_thread(proc.wait_output, "(2 processes)", 30.0)
            children = _children(proc.pid)
            assert len(children) == 1, f"expected one extra HTTP process, saw {children}"
            await _both_listening(proc)
            child_cpu = _cpu_seconds(children[0])
            answers = await _send_all(proc.url)
            assert all('"code":200' in a.replace(" ", "") for a in answers), answers[:3]
            # The kernel spread the 16 connections over both (all on one: 1 in 2**15); the
            # child, idle before, did its share of the work on the same database.
            assert _cpu_seconds(children[0]) - child_cpu > 0.1
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
    data = _config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'simgate.db'}", port)
    config = write_config(tmp_path / "simgate.toml", data)
    with SimgateProcess(["run", "--workers", "2"], workdir=tmp_path, config=config) as proc:
        assert proc.wait(60) == 1
        assert "--workers N needs PostgreSQL" in proc.stderr()
