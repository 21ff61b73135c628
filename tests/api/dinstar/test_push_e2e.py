"""Pushes through the real push engine to a real HTTP receiver (spec §2.9, §7).

The receiver is pytest-httpserver on 127.0.0.1; the operator allows loopback with
``push.allow_cidrs`` as the SSRF guard demands.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pytest_httpserver import HTTPServer

from simgate.domain.messages import State
from tests.api.dinstar.conftest import SN, Gw, GwFactory


async def pushing(make_gw: GwFactory, server: HTTPServer, types: list[str] | None = None) -> Gw:
    gw = await make_gw(
        push={"allow_cidrs": ["127.0.0.1/32"], "idle_poll_seconds": 0.05},
        lines={"sim": {"report_delay_ms": 5000}},
    )
    server.expect_request("/dinstar", method="POST").respond_with_data("ok")
    await gw.sv.dinstar.set_push_target(
        url=f"http://127.0.0.1:{server.port}/dinstar",
        types=types or ["sms", "sms_result", "sms_deliver_status", "ussd", "register"],
    )
    await gw.rt.start_worker()
    return gw


async def received(gw: Gw, server: HTTPServer, count: int) -> list[dict[str, Any]]:
    for _ in range(2000):
        if len(server.log) >= count:
            break
        await gw.clock.advance(0.05)
        await asyncio.sleep(0.005)
    assert len(server.log) >= count, f"{len(server.log)} pushes arrived, wanted {count}"
    out = []
    for request, _ in server.log:
        assert request.headers["Content-Type"] == "application/json"
        out.append(json.loads(request.get_data()))
    return out


async def test_result_delivery_incoming_ussd_and_register_pushes(
    make_gw: GwFactory, httpserver: HTTPServer
) -> None:
    gw = await pushing(make_gw, httpserver)
    sent = await gw.post(
        "/api/send_sms",
        {"text": "y" * 100, "port": [2], "param": [{"number": "5550199", "user_id": 42}]},
    )
    assert sent["error_code"] == 202
    ids = await gw.message_ids()
    await gw.settle(ids, State.SENT)
    await gw.clock.advance(6)
    await gw.settle(ids, State.DELIVERED)
    bodies = await received(gw, httpserver, 3)
    assert [next(k for k in b if k != "sn") for b in bodies[:3]] == [
        "sms_result",
        "sms_result",
        "sms_deliver_status",
    ]
    assert all(b["sn"] == SN and "error_code" not in b for b in bodies)
    sent_ok, delivered, status = (
        b[k][0]
        for b, k in zip(bodies, ("sms_result", "sms_result", "sms_deliver_status"), strict=False)
    )
    assert (sent_ok["status"], delivered["status"]) == ("SENT_OK", "DELIVERED")
    assert (delivered["port"], delivered["user_id"], delivered["count"]) == (2, 42, 2)
    assert (status["port"], status["ref_id"], status["status_code"]) == (2, delivered["ref_id"], 0)
    query = await gw.post("/api/query_sms_result", {"user_id": [42]})
    assert query["result"] == [delivered]

    await gw.line.inject_incoming(port=5, sender="6717", text="ping")
    await gw.post("/api/send_ussd", {"port": [1], "text": "*100#"})
    await gw.line.change_port(7, registered=False)
    bodies = await received(gw, httpserver, 6)
    kinds = {next(k for k in b if k != "sn"): b for b in bodies[3:]}
    assert set(kinds) == {"sms", "ussd", "register"}
    incoming = (await gw.get("/api/query_incoming_sms"))["sms"]
    assert kinds["sms"]["sms"] == incoming
    reply = (await gw.get("/api/query_ussd_reply", port="1"))["reply"]
    assert kinds["ussd"]["ussd"] == reply
    (reg,) = kinds["register"]["register"]
    assert (reg["port"], reg["status"], reg["imsi"]) == (7, "down", "<NULL>")


async def test_only_chosen_types_are_pushed(make_gw: GwFactory, httpserver: HTTPServer) -> None:
    gw = await pushing(make_gw, httpserver, types=["sms"])
    await gw.post("/api/send_sms", {"text": "x", "param": [{"number": "5550199"}]})
    ids = await gw.message_ids()
    await gw.settle(ids, State.SENT)
    await gw.clock.advance(6)
    await gw.settle(ids, State.DELIVERED)
    await gw.line.inject_incoming(port=0, sender="1", text="only me")
    (body,) = await received(gw, httpserver, 1)
    assert body["sms"][0]["text"] == "only me"
    assert len(httpserver.log) == 1
