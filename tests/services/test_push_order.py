"""Push order as a receiver sees it (spec, Amendments: "All pushes"): for each message the push
that says "sent" comes before the one that says "delivered", so a receiver that keeps the last
status per message ends on the final one.

The reports overtake their submit answers here as they do in production: the sim line reports
at once (``report_delay_ms = 0``), and the scripted SMSC sends each receipt right after its
submit_sm_resp, while the dispatcher has not recorded the batch yet. 200 messages go in through
the dialect's HTTP API, the push sender runs, and the pushes reach a real HTTP receiver on
loopback.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from simgate.domain.messages import State
from simgate.domain.records import MessageRecord
from simgate.runtime import Runtime
from simgate.testing.push_receiver import PushReceiver, Received
from simgate.testing.smsc import FakeSmsc
from tests.conftest import make_settings, need_peer
from tests.peers.smpp.runtime_support import numbers, settle, smpp_line
from tests.peers.smpp.support import NodeSmsc, node_smpp_missing

N = 200
USER, PASSWORD = "gw", "secret-pass"
PUSH = {"allow_cidrs": ["127.0.0.1/32"], "idle_poll_seconds": 0.02, "retry_base_seconds": 1}
WORKER = {"idle_poll_seconds": 0.01, "batch_size": 50}

pytestmark = pytest.mark.db  # opens a database (so not in the --fast unit slice)


@asynccontextmanager
async def line_settings(kind: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """The ``lines`` table of one line named ``gsm``: the sim line or SMPP to a peer."""
    if kind == "sim":
        yield {"gsm": {"driver": "sim", "report_delay_ms": 0}}
    elif kind == "smpp":
        async with FakeSmsc() as smsc:
            yield {"gsm": smpp_line(smsc.port)}
    else:
        problem = node_smpp_missing()
        need_peer("node-smpp", not problem, problem)
        with NodeSmsc(tmp_path) as node:
            yield {"gsm": smpp_line(node.port)}


@asynccontextmanager
async def gateway(kind: str, tmp_path: Path) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    async with line_settings(kind, tmp_path) as lines:
        url = f"sqlite+aiosqlite:///{tmp_path / 'simgate.db'}"
        settings = make_settings(
            tmp_path,
            url,
            push=PUSH,
            worker=WORKER,
            lines=lines,
            routes=[{"prefix": "", "lines": ["gsm"]}],
        )
        rt = Runtime(settings, role="run")  # the system clock: real sockets, real sender
        sv = await rt.open()
        try:
            account = await sv.accounts.create_account(name="acme", balance="1000")
            await sv.accounts.create_user(account.id, username=USER, password=PASSWORD)
            transport = httpx.ASGITransport(app=rt.app())
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                yield rt, client
        finally:
            await rt.close()


async def until(what: str, done: Callable[[], bool], within: float = 60) -> None:
    for _ in range(int(within / 0.05)):
        if done():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# ---- receivers that keep the last status per message ----------------------------------
def dinstar_last(requests: list[Received]) -> dict[int, str]:
    """``user_id`` → the status of the last ``sms_result`` item about it (items in order)."""
    last: dict[int, str] = {}
    for r in requests:
        for item in json.loads(r.body).get("sms_result", []):
            last[item["user_id"]] = item["status"]
    return last


def openvox_last(requests: list[Received]) -> dict[str, str]:
    """Destination → the status of the last result or report about it (reports carry no id,
    so a receiver goes by the number, spec §3.4c)."""
    last: dict[str, str] = {}
    for r in requests:
        q = dict(parse_qsl(urlsplit(r.target).query, keep_blank_values=True))
        last[q["to"]] = q["status"]
    return last


@pytest.mark.parametrize("kind", ["sim", "smpp", pytest.param("node-smpp", marks=pytest.mark.peer)])
async def test_dinstar_receiver_ends_on_delivered(kind: str, tmp_path: Path) -> None:
    receiver = PushReceiver()
    await receiver.start()
    try:
        async with gateway(kind, tmp_path) as (rt, client):
            assert rt.services is not None
            await rt.services.dinstar.set_push_target(
                url=receiver.url + "/dinstar", types=["sms_result", "sms_deliver_status"]
            )
            await rt.start_worker()
            params = [{"number": n, "user_id": i + 1} for i, n in enumerate(numbers(N))]
            for i in range(0, N, 100):  # at most 128 numbers a request (spec §2.2)
                body = {"text": "hello", "param": params[i : i + 100]}
                got = await client.post("/api/send_sms", json=body, auth=(USER, PASSWORD))
                assert got.json()["error_code"] == 202, got.text
            ids = [m.id for m in await _messages(rt)]
            rows = await settle(rt.store, ids, within=60)
            assert {r.state for r in rows} == {State.DELIVERED}
            await until("a DELIVERED result per message", lambda: _dinstar_done(receiver))
            last = dinstar_last(receiver.requests)
    finally:
        await receiver.stop()
    assert len(last) == N
    stuck = sorted(uid for uid, status in last.items() if status != "DELIVERED")
    assert stuck == [], f"{len(stuck)} receivers end on another status: {last[stuck[0]]}"


def _dinstar_done(receiver: PushReceiver) -> bool:
    seen = [
        item
        for r in receiver.requests
        for item in json.loads(r.body).get("sms_result", [])
        if item["status"] == "DELIVERED"
    ]
    return len(seen) >= N and len(receiver.answered) == len(receiver.requests)


@pytest.mark.parametrize("kind", ["sim", "smpp", pytest.param("node-smpp", marks=pytest.mark.peer)])
async def test_openvox_receiver_ends_on_received_on_handset(kind: str, tmp_path: Path) -> None:
    receiver = PushReceiver()
    await receiver.start()
    try:
        async with gateway(kind, tmp_path) as (rt, client):
            config = {
                "username": USER,
                "password": PASSWORD,
                "enable": 1,
                "results_enable": 1,
                "reports_enable": 1,
                "url_http": "http",
                "url_host": "127.0.0.1",
                "url_port": str(receiver.port),
                "url_path": "/hook",
                "url_from_num": "to",
                "url_status": "status",
            }
            doc = (await client.post("/smsoutbox/set_config", json=config)).json()
            assert doc["code"] == 200, doc
            await rt.start_worker()
            send = {"username": USER, "password": PASSWORD, "msg": "hello"}
            doc = (
                await client.post("/sms/send", json={**send, "dest_num": ",".join(numbers(N))})
            ).json()
            assert doc["code"] == 200, doc
            ids = [m.id for m in await _messages(rt)]
            rows = await settle(rt.store, ids, within=60)
            assert {r.state for r in rows} == {State.DELIVERED}
            await until("a report per message", lambda: len(receiver.answered) >= 2 * N)
            last = openvox_last(receiver.requests)
    finally:
        await receiver.stop()
    assert len(last) == N
    stuck = sorted(n for n, status in last.items() if status != "Message received on handset")
    assert stuck == [], f"{len(stuck)} receivers end on another status: {last[stuck[0]]}"


async def _messages(rt: Runtime) -> list[MessageRecord]:
    async with rt.store.db.read() as conn:
        rows = await rt.store.messages.page(conn, account_id=None, limit=10_000)
    assert len(rows) == N
    return list(rows)
