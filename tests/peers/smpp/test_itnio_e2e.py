"""End to end over SMPP: itniotech sendSms with a long UCS-2 text → the npm smpp SMSC receives
the parts with a correct concatenation UDH → its receipts come back → getReport says
delivered and the pushSmsReport push arrives (spec §1.3, §1.5, §1.9, §7)."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from simgate.codecs.udh import parse_udh
from simgate.domain.messages import State
from simgate.testing.clock import FakeClock
from simgate.testing.push_receiver import PushReceiver
from tests.api.itnio.conftest import Itnio, make_itnio
from tests.conftest import need_peer

from .runtime_support import smpp_line
from .support import NodeSmsc, node_smpp_missing

pytestmark = pytest.mark.peer

PUSH = {"allow_cidrs": ["127.0.0.1/32"], "retry_base_seconds": 1, "idle_poll_seconds": 0.05}
TEXT = "Ваш заказ №4711 передан курьеру. Ожидайте звонка сегодня с 14:00 до 18:00. Спасибо! 🚚"


async def _delivered(env: Itnio, mid: int) -> bool:
    async with env.rt.store.db.read() as conn:
        (m,) = await env.rt.store.messages.get(conn, [mid])
    return m.state is State.DELIVERED


async def _until(env: Itnio, ok: Callable[[], object], what: str) -> None:
    # The fake clock moves 40 s in all; the real waits grow after the first hundred tries so
    # that a machine under load (CI beside benchmarks) gets ~30 s for the SMSC's round trips
    # (it failed once at the old ~4 s) while a quiet one still passes in tenths of a second.
    for attempt in range(400):
        result = ok()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await env.clock.advance(0.1)
        await asyncio.sleep(0.01 if attempt < 100 else 0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_itnio_long_ucs2_over_smpp_is_delivered_and_pushed(tmp_path: Path) -> None:
    problem = node_smpp_missing()
    need_peer("node-smpp", not problem, problem)
    receiver = PushReceiver()
    await receiver.start()
    url = f"sqlite+aiosqlite:///{tmp_path / 'simgate.db'}"
    try:
        with NodeSmsc(tmp_path) as smsc:
            extra = {
                "push": PUSH,
                "lines": {"smsc": smpp_line(smsc.port)},
                "routes": [{"prefix": "", "lines": ["smsc"]}],
            }
            async with make_itnio(url, tmp_path, FakeClock(), **extra) as env:
                await env.services.accounts.update_app_push(
                    env.app.app_id, {"report_url": receiver.url + "/report"}
                )
                await env.rt.start_worker()
                got = await env.post(
                    "/sms/sendSms",
                    {
                        "appId": env.app.app_id,
                        "numbers": "79161234567",
                        "content": TEXT,
                        "orderId": "o-1",
                    },
                )
                assert got["status"] == "0"
                mid = got["array"][0]["msgId"]

                await _until(env, functools.partial(_delivered, env, int(mid)), "DELIVERED")
                report = await env.get("/sms/getReport", {"appId": env.app.app_id, "msgIds": mid})
                await _until(
                    env, lambda: any(r.target == "/report" for r in receiver.requests), "push"
                )
    finally:
        await receiver.stop()

    parts = [e for e in smsc.entries("submit") if e["dst"] == "79161234567"]
    assert len(parts) == 2  # 87 UTF-16 units (the emoji is a surrogate pair): 2 parts of ≤ 67
    heads = []
    for e in parts:
        ies = bytes.fromhex("".join(e["udh"]))
        info, _ = parse_udh(bytes([len(ies)]) + ies)
        assert info is not None
        heads.append((info.ref, info.total, info.seq))
        assert e["data_coding"] == 8
        assert e["esm_class"] & 0x40
        assert e["registered_delivery"] == 1
    assert sorted(h[2] for h in heads) == [1, 2]
    assert {h[:2] for h in heads} == {(heads[0][0], 2)}
    ordered = sorted(parts, key=lambda e: bytes.fromhex(e["udh"][0])[-1])
    assert "".join(e["text"] for e in ordered) == TEXT
    assert (report["success"], report["array"][0]["status"]) == ("1", "0")
    (push,) = [r for r in receiver.requests if r.target == "/report"]
    body = json.loads(push.body)
    assert (body["msgid"], body["orderId"], body["status"], body["mobile"]) == (
        mid,
        "o-1",
        0,
        "79161234567",
    )
    assert body["pricedetail"]["chargeCnt"] == 2
