"""Pushes end to end (spec §3.4, §7): planner → outbox → sender → a real local HTTP server.

The receiver is pytest-httpserver (a werkzeug server on 127.0.0.1); the operator allows
loopback with ``push.allow_cidrs`` as the SSRF guard demands.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from pytest_httpserver import HTTPServer

from simgate.domain.messages import State
from simgate.lines.base import IncomingSms
from simgate.services.sending import Recipient, SendRequest
from simgate.testing.clock import FakeClock
from tests.api.openvox.conftest import OV, open_ov

NAMES = {
    "url_from_num": "sender_or_dest",
    "url_to_num": "gsm_port",
    "url_portname": "gsm_port_name",
    "url_message": "body",
    "url_time": "stamp",
    "url_imsi": "card",
    "url_status": "result",
}


@pytest.fixture
async def pushing(
    backend: str, tmp_path: Path, clock: FakeClock, httpserver: HTTPServer
) -> AsyncIterator[OV]:
    rt, handle = await open_ov(
        backend,
        tmp_path,
        clock,
        push={"allow_cidrs": ["127.0.0.1/32"], "idle_poll_seconds": 0.05},
        lines={"sim": {"report_delay_ms": 5000}},
    )
    httpserver.expect_request("/hook").respond_with_data("ok")
    doc = await handle.post(
        "/smsoutbox/set_config",
        {
            "enable": 1,
            "results_enable": 1,
            "reports_enable": 1,
            "url_http": "http",
            "url_host": "127.0.0.1",
            "url_port": str(httpserver.port),
            "url_path": "/hook",
            "url_user_defined": "token=t0k&site=7",
            **NAMES,
        },
    )
    assert doc["code"] == 200, doc["msg"]
    await rt.start_worker()
    try:
        yield handle
    finally:
        await handle.client.aclose()
        await rt.close()


async def received(ov: OV, server: HTTPServer, count: int) -> list[list[tuple[str, str]]]:
    """Query pairs of the first ``count`` requests the receiver got, in arrival order."""
    for _ in range(1000):
        if len(server.log) >= count:
            break
        await ov.clock.advance(0.05)
        await asyncio.sleep(0.005)
    assert len(server.log) >= count, f"{len(server.log)} pushes arrived, wanted {count}"
    out = []
    for request, _ in server.log[:count]:
        assert request.method == "GET"
        assert request.path == "/hook"
        out.append(parse_qsl(request.query_string.decode(), keep_blank_values=True))
    return out


def names(pairs: list[tuple[str, str]]) -> list[str]:
    return [k for k, _ in pairs]


async def test_result_then_report_pushes_with_the_configured_names(
    pushing: OV, httpserver: HTTPServer
) -> None:
    ov = pushing
    doc = await ov.post("/sms/send", {"spans": [4], "dest_num": "8613800138000", "msg": "hi"})
    (item,) = doc["data"]
    (result,) = await received(ov, httpserver, 1)
    assert names(result) == [
        "sender_or_dest",
        "gsm_port",
        "id",
        "card",
        "body",
        "stamp",
        "type",
        "result",
        "token",
        "site",
    ]
    values = dict(result)
    assert values["sender_or_dest"] == "8613800138000"
    assert values["gsm_port"] == "4"
    assert values["id"] == item["id"]
    assert values["card"] == ov.sv.lines["sim"].ports()[3].imsi
    assert values["body"] == ""
    assert values["stamp"] == "2026-01-01 00:00:00"
    assert (values["type"], values["result"]) == ("SMS-Status-Result", "Sent")
    assert (values["token"], values["site"]) == ("t0k", "7")

    await ov.clock.advance(5)  # the sim line's report delay
    _, report = await received(ov, httpserver, 2)
    assert names(report) == [
        "sender_or_dest",
        "gsm_port",
        "card",
        "body",
        "stamp",
        "type",
        "result",
        "cause",
        "token",
        "site",
    ]
    values = dict(report)
    assert values["type"] == "SMS-Status-Report"
    assert values["result"] == "Message received on handset"
    assert values["cause"] == "0"
    # The same message shows DELIVERD in the outbox.
    rows = (await ov.post("/smsoutbox/get"))["data"]
    assert [(r["id"], r["status"]) for r in rows] == [(item["id"], "DELIVERD")]


async def test_incoming_sms_is_pushed(pushing: OV, httpserver: HTTPServer) -> None:
    ov = pushing
    line = ov.sv.lines["sim"]
    sms = IncomingSms(
        port=5,
        sender="+8613900000009",
        recipient="",
        text="ping & pong",
        received_ms=ov.clock.now_ms(),
    )
    await ov.sv.inbound.receive("sim", [sms], line.ports())
    (pairs,) = await received(ov, httpserver, 1)
    assert names(pairs) == [
        "sender_or_dest",
        "gsm_port",
        "gsm_port_name",
        "body",
        "stamp",
        "card",
        "token",
        "site",
    ]
    assert dict(pairs) == {
        "sender_or_dest": "+8613900000009",
        "gsm_port": "6",
        "gsm_port_name": "gsm-1.6",
        "body": "ping & pong",
        "stamp": "2026-01-01 00:00:00",
        "card": line.ports()[5].imsi,
        "token": "t0k",
        "site": "7",
    }


async def test_messages_of_other_dialects_are_not_pushed(
    pushing: OV, httpserver: HTTPServer
) -> None:
    ov = pushing
    outcome = await ov.sv.sending.send(
        SendRequest(
            account=ov.account, dialect="itnio", text="x", recipients=[Recipient("8613800138000")]
        )
    )
    mid = outcome.accepted[0].message_id
    for _ in range(400):
        async with ov.rt.store.db.read() as conn:
            (rec,) = await ov.rt.store.messages.get(conn, [mid])
        if rec.state is State.DELIVERED:
            break
        await ov.clock.advance(0.05)
        await asyncio.sleep(0.002)
    assert rec.state is State.DELIVERED
    # A message of ours sent afterwards is pushed, so the receiver is demonstrably reachable.
    await ov.post("/sms/send", {"dest_num": "8613800138001", "msg": "ours"})
    (first,) = await received(ov, httpserver, 1)
    assert dict(first)["sender_or_dest"] == "8613800138001"


async def test_switched_off_pushes_plan_nothing(pushing: OV, httpserver: HTTPServer) -> None:
    ov = pushing
    doc = await ov.post(
        "/smsoutbox/set_config", {"enable": 0, "results_enable": 0, "reports_enable": 1}
    )
    assert doc["code"] == 200
    await ov.post("/sms/send", {"dest_num": "8613800138000", "msg": "quiet"})
    await ov.clock.advance(5)
    (report,) = await received(ov, httpserver, 1)  # only the report push is on
    assert dict(report)["type"] == "SMS-Status-Report"
    assert len(httpserver.log) == 1
