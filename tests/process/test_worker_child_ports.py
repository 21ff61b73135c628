"""``simgate run --worker-process``: port actions reach the worker child's lines (issue 15).

The lines are started in the child only; the parent's line objects are copies that were
never started. A port locked through the Dinstar API (spec §2.8 set_port_info) must be locked
where the dispatcher picks ports, as it is in one process: here the sim line has 8 ports, 7
are locked, and every message then leaves through the eighth (the sim journal's ``S`` lines
name the port), also after the child died and the next one started (the parent tells it
which ports it shows locked). While the child is down, a port action answers the envelope's
"500 other errors" saying why, instead of acting on a copy nobody dispatches from; once the
next child runs, actions work again.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from simgate.domain.accounts import GatewayRole
from simgate.testing.procs import SimgateProcess, free_port
from tests.process.runs import CLEAN_EXITS
from tests.process.support import add_user, database_url
from tests.process.worker_children import RUN, child_config, kill_child, one_worker_child, started

pytestmark = pytest.mark.slow

USER, PASSWORD = "ops", "ops-password-1"
LOCKED = list(range(7))  # of the sim line's 8 ports (settings.SimLineSettings.ports)
FREE = 7


def _ports_used(journal: Path) -> list[int]:
    """The port of each submit the sim line journaled (``S <id> <parts> <code> <seq> <port>``)."""
    if not journal.exists():
        return []
    text = journal.read_text(encoding="ascii")
    text = text[: text.rfind("\n") + 1]  # a line being written is not whole yet
    return [int(f[5]) for f in (ln.split() for ln in text.splitlines()) if f[0] == "S"]


async def _call(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = await http.post(path, json=body)
    assert answer.status_code == 200, answer.text  # Dinstar says errors in the envelope
    doc: dict[str, Any] = answer.json()
    return doc


async def _until_submitted(journal: Path, count: int) -> list[int]:
    """Until the sim line journaled ``count`` submits; the port of each."""
    deadline = time.monotonic() + 60
    while len(used := _ports_used(journal)) < count:
        assert time.monotonic() < deadline, f"submitted: {used}"
        await asyncio.sleep(0.05)
    return used


async def _send(http: httpx.AsyncClient, prefix: str, count: int) -> None:
    """``count`` messages in one Dinstar send_sms (spec §2.2), accepted."""
    numbers = [{"number": f"{prefix}{i:02d}"} for i in range(count)]
    doc = await _call(http, "/api/send_sms", {"text": "hi", "param": numbers})
    assert doc["error_code"] == 202, doc


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
async def test_ports_locked_over_the_dinstar_api_are_locked_where_messages_are_sent(
    tmp_path: Path, backend: str, pg_url: str | None
) -> None:
    port = free_port()
    config = child_config(tmp_path, port, await database_url(backend, pg_url))
    await add_user(config, USER, PASSWORD, GatewayRole.OPERATOR)
    journal = tmp_path / "sim.journal"
    with SimgateProcess(RUN, workdir=tmp_path, config=config, port=port) as proc:
        child = await started(proc, lines_running=True)
        async with httpx.AsyncClient(base_url=proc.url, timeout=60, auth=(USER, PASSWORD)) as http:
            doc = await _call(http, "/api/set_port_info", {"port": LOCKED, "action": "lock"})
            assert doc["error_code"] == 200, doc
            await _send(http, "55501", 20)
            used = await _until_submitted(journal, 20)
            assert set(used) == {FREE}  # the locked ports were not used

            # A worker child that dies: the next one keeps the locks the parent shows.
            await kill_child(child)
            await _send(http, "55502", 20)
            await one_worker_child(proc.pid, not_in=frozenset({child}))
            used = await _until_submitted(journal, 40)
            assert set(used) == {FREE}

            deadline = time.monotonic() + 60  # once the new child runs its lines
            while (
                doc := await _call(http, "/api/set_port_info", {"port": LOCKED, "action": "unlock"})
            )["error_code"] != 200:
                assert time.monotonic() < deadline, doc
                await asyncio.sleep(0.1)
            await _send(http, "55503", 40)
            used = await _until_submitted(journal, 80)
            assert set(used[40:]) - {FREE}  # unlocked: used again
        assert proc.stop() in CLEAN_EXITS


async def test_a_port_action_while_the_worker_child_is_down_says_so(tmp_path: Path) -> None:
    port = free_port()
    config = child_config(tmp_path, port)
    await add_user(config, USER, PASSWORD, GatewayRole.OPERATOR)
    with SimgateProcess(RUN, workdir=tmp_path, config=config, port=port) as proc:
        child = await started(proc, lines_running=True)
        async with httpx.AsyncClient(base_url=proc.url, timeout=60, auth=(USER, PASSWORD)) as http:
            await kill_child(child)
            lock = {"port": [0], "action": "lock"}
            doc = await _call(http, "/api/set_port_info", lock)
            assert doc["error_code"] == 500, doc  # spec §2.1 "other errors", saying which
            assert "worker process" in doc["error_msg"], doc
            ussd = await _call(http, "/api/send_ussd", {"port": [0], "text": "*100#"})
            assert ussd["error_code"] == 500, ussd
            assert "worker process" in ussd["error_msg"], ussd

            await one_worker_child(proc.pid, not_in=frozenset({child}))
            deadline = time.monotonic() + 60
            while (doc := await _call(http, "/api/set_port_info", lock))["error_code"] != 200:
                assert doc["error_code"] == 500, doc
                assert "worker process" in doc["error_msg"], doc
                assert time.monotonic() < deadline, doc
                await asyncio.sleep(0.1)
            ussd = await _call(http, "/api/send_ussd", {"port": [0], "text": "*100#"})
            assert ussd["result"] == [{"port": 0, "status": 503}], ussd  # locked: not usable
        assert proc.stop() in CLEAN_EXITS
