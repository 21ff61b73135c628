"""``simgate run --workers 2``: one /metrics whichever process answers, and an extra HTTP
process that dies is started again (issue 15; cli/http_workers.py).

The kernel gives each new connection to either process (SO_REUSEPORT): every /metrics asked
on a new connection must count every send of both processes. A SIGKILLed extra process is
started again (logged), and the count it had does not drop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port, write_config
from tests.conftest import PG_ADMIN_URL, need_peer
from tests.process.runs import CLEAN_EXITS
from tests.process.support import open_services
from tests.support.pg import truncate_pg

pytestmark = [pytest.mark.slow, pytest.mark.pg]

USER, PASSWORD = "gw", "gw-password-1"
SENDS, CONNECTIONS, SCRAPES = 200, 16, 20


def _http_children(pid: int) -> list[int]:
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


def _accepted(text: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "simgate_messages_accepted":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


async def _scrape(base: str) -> float:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:  # a new connection
        answer = await http.get("/metrics")
        assert answer.status_code == 200, answer.text
        return _accepted(answer.text)


async def _send(base: str, first: int, count: int) -> None:
    async def client(c: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for i in range(first + c, first + count, CONNECTIONS):
                body = {"username": USER, "password": PASSWORD, "dest_num": f"86138{i:08d}"}
                answer = await http.post("/sms/send", json={**body, "msg": f"m{i}"})
                assert '"code":200' in answer.text.replace(" ", ""), answer.text

    await asyncio.gather(*(client(c) for c in range(CONNECTIONS)))


async def test_one_metrics_from_every_process_and_a_dead_one_started_again(
    tmp_path: Path, pg_url: str | None
) -> None:
    need_peer("postgresql", pg_url is not None, PG_ADMIN_URL)
    assert pg_url is not None
    await truncate_pg(pg_url)
    port = free_port()
    config = write_config(
        tmp_path / "simgate.toml",
        {
            "data_dir": str(tmp_path / "data"),
            "database_url": pg_url,
            "master_key": "workers-metrics-master-key-012345",
            "log_level": "warning",
            "demo": {"create": False},
            "http": {"port": port},
            "lines": {"sim": {"driver": "sim", "journal": str(tmp_path / "sim.journal")}},
        },
    )
    rt = await open_services(load_settings(config))
    try:
        assert rt.services is not None
        account = await rt.services.accounts.create_account(name="load", balance="1000000")
        await rt.services.accounts.create_user(account.id, username=USER, password=PASSWORD)
    finally:
        await rt.close()
    proc = SimgateProcess(["run", "--workers", "2"], workdir=tmp_path, config=config, port=port)
    with proc:
        await asyncio.to_thread(proc.wait_healthy, 60.0)
        deadline = time.monotonic() + 60
        while proc.stdout().count("listening on") < 2:  # the child's own line too
            assert time.monotonic() < deadline, proc.stdout()
            await asyncio.sleep(0.1)
        (child,) = _http_children(proc.pid)
        await _send(proc.url, 0, SENDS)  # spread over both processes by the kernel
        seen = [await _scrape(proc.url) for _ in range(SCRAPES)]
        assert seen == [SENDS] * SCRAPES  # every answer counts both processes' sends

        os.kill(child, signal.SIGKILL)  # our test's own grandchild, by its pid
        deadline = time.monotonic() + 60
        while not [c for c in _http_children(proc.pid) if c != child]:
            assert time.monotonic() < deadline, "the HTTP process was not started again"
            assert await _scrape(proc.url) == SENDS  # never less meanwhile
            await asyncio.sleep(0.1)
        deadline = time.monotonic() + 60
        while proc.stderr().count("listening on") + proc.stdout().count("listening on") < 3:
            assert time.monotonic() < deadline, proc.stdout()
            await asyncio.sleep(0.1)
        assert f"HTTP process {child} ended (exit -9); restarting" in proc.stderr()
        await _send(proc.url, SENDS, SENDS)
        seen = [await _scrape(proc.url) for _ in range(SCRAPES)]
        assert seen == [2 * SENDS] * SCRAPES
        assert proc.stop() in CLEAN_EXITS
