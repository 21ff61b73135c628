"""End to end in one process: sendSms → sim line → DELIVERED → getReport, getSentRcd and the
pushSmsReport push; an incoming SMS on the sim line → recordMo and pushMoSmsReport.

HTTP to the receiver is real (testing.push_receiver); time is a FakeClock advanced in steps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from simgate.domain.messages import State
from simgate.lines.sim import SimLine
from simgate.testing.clock import FakeClock
from simgate.testing.push_receiver import PushReceiver
from tests.api.itnio.conftest import Itnio, make_itnio

PUSH = {"allow_cidrs": ["127.0.0.1/32"], "retry_base_seconds": 1, "idle_poll_seconds": 0.05}


@pytest.fixture
async def rig(
    backend: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[Itnio, PushReceiver]]:
    receiver = PushReceiver()
    await receiver.start()
    try:
        async with make_itnio(backend, tmp_path, clock, push=PUSH) as env:
            await env.services.accounts.update_app_push(
                env.app.app_id,
                {"report_url": receiver.url + "/report", "mo_url": receiver.url + "/mo"},
            )
            await env.rt.start_worker()
            yield env, receiver
    finally:
        await receiver.stop()


async def _until(env: Itnio, ok: Callable[[], object], what: str) -> None:
    for _ in range(400):
        result = ok()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await env.clock.advance(0.1)
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def test_sent_message_is_delivered_reported_and_pushed(
    rig: tuple[Itnio, PushReceiver],
) -> None:
    env, receiver = rig
    got = await env.post(
        "/sms/sendSms",
        {
            "appId": env.app.app_id,
            "numbers": "91856321413",
            "content": "x" * 200,
            "orderId": "ord-7",
        },
    )
    assert got["status"] == "0"
    mid = got["array"][0]["msgId"]

    async def delivered() -> bool:
        async with env.rt.store.db.read() as conn:
            (m,) = await env.rt.store.messages.get(conn, [int(mid)])
        return m.state is State.DELIVERED

    await _until(env, delivered, "DELIVERED")
    report = await env.get("/sms/getReport", {"appId": env.app.app_id, "msgIds": mid})
    assert (report["success"], report["array"][0]["status"]) == ("1", "0")
    day = {"startTime": "2026-01-01T00:00:00+08:00", "endTime": "2026-01-01T23:59:59+08:00"}
    rcd = await env.get("/sms/getSentRcd", {"appId": env.app.app_id, **day})
    assert [(i["msgId"], i["status"]) for i in rcd["array"]] == [(mid, "0")]

    await _until(env, lambda: any(r.target == "/report" for r in receiver.requests), "report push")
    (push,) = [r for r in receiver.requests if r.target == "/report"]
    assert push.method == "POST"
    assert push.headers["content-type"] == "application/json;charset=UTF-8"
    body = json.loads(push.body)
    assert body == {
        "appId": env.app.app_id,
        "orderId": "ord-7",
        "msgid": mid,
        "mobile": "91856321413",
        "status": 0,
        "reason": "0",
        "timestamp": body["timestamp"],
        "mcc": "404",  # the destination's country, India (spec "Amendments")
        "mnc": "-1",
        "pricedetail": {"pay": "0.02", "chargeCnt": 2, "currency": "USD", "price": "0.01"},
    }
    assert isinstance(body["timestamp"], int)
    assert body["timestamp"] >= env.clock.now_ms() - 60_000


async def test_incoming_sms_reaches_record_mo_and_mo_push(rig: tuple[Itnio, PushReceiver]) -> None:
    env, receiver = rig
    line = env.services.lines["sim"]
    assert isinstance(line, SimLine)
    await line.inject_incoming(port=1, sender="91856321412", text="STOP")
    window = {"strTime": "2026-01-01T00:00:00+08:00", "endTime": "2026-01-01T23:59:59+08:00"}

    async def listed() -> bool:
        got = await env.post(
            "/sms/recordMo", {"appId": env.app.app_id, "current": 1, "size": 10, "params": window}
        )
        return bool(got["data"]["records"])

    await _until(env, listed, "recordMo")
    got = await env.post(
        "/sms/recordMo", {"appId": env.app.app_id, "current": 1, "size": 10, "params": window}
    )
    (record,) = got["data"]["records"]
    port = line.ports()[1]
    assert (record["number"], record["sendId"], record["content"]) == (
        "91856321412",
        port.number,
        "STOP",
    )
    await _until(env, lambda: any(r.target == "/mo" for r in receiver.requests), "MO push")
    (push,) = [r for r in receiver.requests if r.target == "/mo"]
    body = json.loads(push.body)
    assert set(body) == {
        "msgid",
        "mobile",
        "reply_time",
        "content",
        "sendid",
        "mcc",
        "mnc",
        "operator",
        "pricedetail",
    }
    assert (body["mobile"], body["content"], body["sendid"]) == ("91856321412", "STOP", port.number)
    assert body["reply_time"] == "2026-01-01 08:00:00"  # yyyy-MM-dd HH:mm:ss, account zone
    assert isinstance(body["mcc"], int)
    assert isinstance(body["mnc"], int)
    assert len(body["msgid"]) == 19
