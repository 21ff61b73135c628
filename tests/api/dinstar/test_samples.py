"""Every sample request of spec §2 replayed; answers compared with the samples field by field.

Values the sample fixes and simgate can reproduce (numbers, user_id, status, count,
succ_count, ref_id, port, time via the fake clock, codes) are compared exactly; values that
come from the SIM (imsi) are compared with the port's own. ``sn`` is the configured serial.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from simgate.domain.messages import State
from simgate.lines.base import IncomingSms
from tests.api.dinstar.conftest import SN, Gw, GwFactory, capture_pushes

TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")

# The vendor samples (spec §2.2-§2.9), verbatim but for "sn".
SEND = {"error_code": 202, "sn": "x", "sms_in_queue": 2, "task_id": 2}
RESULT: dict[str, Any] = {
    "error_code": 200,
    "sn": "x",
    "result": [
        {
            "port": 0,
            "user_id": 1,
            "number": "12351",
            "time": "2014-12-21 12:06:01",
            "status": "SENT_OK",
            "count": 3,
            "succ_count": 3,
            "ref_id": 12,
            "imsi": "460004642148063",
        }
    ],
}
PUSH_RESULT: dict[str, Any] = {
    "sn": "x",
    "sms_result": [
        {
            "port": 1,
            "number": "10086",
            "time": "2016-07-12 01:46:02",
            "status": "DELIVERED",
            "count": 1,
            "succ_count": 1,
            "ref_id": 215,
            "imsi": "460004642148063",
        }
    ],
}
# The sample has no user_id; the spec Amendments put one in every item (0: the send gave none),
# right after port as in the query_sms_result sample.
_PUSH_ITEM = PUSH_RESULT["sms_result"][0]
PUSH_RESULT_AMENDED: dict[str, Any] = {
    "sn": "x",
    "sms_result": [{"port": _PUSH_ITEM["port"], "user_id": 0, **_PUSH_ITEM}],
}
PUSH_DELIVER: dict[str, Any] = {
    "sn": "x",
    "sms_deliver_status": [
        {
            "port": 1,
            "number": "10086",
            "time": "2016-07-12 15:46:53",
            "ref_id": 215,
            "status_code": 0,
            "imsi": "460004642148063",
        }
    ],
}
INCOMING: dict[str, Any] = {
    "error_code": 200,
    "sn": "x",
    "sms": [
        {
            "incoming_sms_id": 1,
            "port": 1,
            "number": "6717",
            "smsc": "+8613800757511",
            "timestamp": "2016-07-12 15:46:18",
            "text": "test",
            "imsi": "x",
        }
    ],
    "read": 4,
    "unread": 2,
}
PUSH_SMS: dict[str, Any] = {"sn": "x", "sms": [dict(INCOMING["sms"][0])]}
IN_QUEUE = {"error_code": 200, "sn": "x", "in_queue": 0}
USSD = {
    "error_code": 202,
    "sn": "x",
    "result": [{"port": 0, "status": 503}, {"port": 2, "status": 200}],
}
USSD_REPLY = {
    "error_code": 200,
    "sn": "x",
    "reply": [{"port": 1, "text": " "}, {"port": 2, "text": "Test…"}],
}
PUSH_USSD = {"sn": "x", "ussd": [{"port": 1, "text": "Thank you!"}]}
PUSH_REGISTER = {
    "sn": "x",
    "register": [
        {
            "port": 8,
            "iccid": "x",
            "imsi": "x",
            "number": "x",
            "status": "up",
            "sequence": 2,
            "slot": 2,
        }
    ],
}


def same_shape(actual: Any, sample: Any, path: str = "$") -> None:
    """Same keys (in order), same JSON types, recursively."""
    if isinstance(sample, dict):
        assert isinstance(actual, dict), path
        assert list(actual) == list(sample), f"{path}: keys {list(actual)} != {list(sample)}"
        for k in sample:
            same_shape(actual[k], sample[k], f"{path}.{k}")
    elif isinstance(sample, list):
        assert isinstance(actual, list), path
        assert actual, path
        for item in actual:
            same_shape(item, sample[0], f"{path}[]")
    else:
        assert type(actual) is type(sample), f"{path}: {type(actual)} != {type(sample)}"
        if isinstance(sample, str) and TIME.match(sample):
            assert TIME.match(actual), f"{path}: {actual!r}"


def at(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp() * 1000)


async def test_send_sms_samples(gw: Gw) -> None:
    simple = await gw.post("/api/send_sms", {"text": "ye", "param": [{"number": "10086"}]})
    same_shape(simple, SEND)
    assert simple["error_code"] == 202
    assert simple["sn"] == SN
    assert simple["task_id"] == 1
    stop = await gw.get("/api/stop_sms", task_id=1)
    assert stop == {"error_code": 200, "sn": SN}
    templated = await gw.post(
        "/api/send_sms",
        {
            "text": "#param#",
            "port": [2, 3],
            "param": [
                {"number": "10086", "text_param": ["bj"], "user_id": 1},
                {"number": "10086", "text_param": ["ye"], "user_id": 2},
            ],
        },
    )
    assert templated == {**SEND, "sn": SN}  # sms_in_queue 2, task_id 2, exactly as the sample
    async with gw.rt.store.db.read() as conn:
        rows = await gw.rt.store.messages.page(conn, account_id=gw.account.id)
    sent = [r for r in rows if r.task_id == 2]
    assert [(r.text, r.client_ref, r.port_hint, r.recipient) for r in sent] == [
        ("bj", "1", "2,3", "10086"),
        ("ye", "2", "2,3", "10086"),
    ]


async def test_query_sms_result_sample(make_gw: GwFactory) -> None:
    gw = await make_gw(lines={"sim": {"report_delay_ms": 3_600_000}})
    await gw.rt.start_worker()
    three_parts = "x" * 140  # UCS-2 (the default "unicode"): 67 per part → 3 parts
    # Use up TP-MR 0..11 on port 0 so the sample's ref_id 12 comes out.
    for _ in range(4):
        await gw.post(
            "/api/send_sms", {"text": three_parts, "port": [0], "param": [{"number": "999"}]}
        )
    await gw.settle(await gw.message_ids(), State.SENT)
    gw.clock.set(at("2014-12-21 12:06:01"))
    await gw.post(
        "/api/send_sms",
        {"text": three_parts, "port": [0], "param": [{"number": "12351", "user_id": 1}]},
    )
    ids = await gw.message_ids()
    await gw.settle(ids, State.SENT)
    got = await gw.post("/api/query_sms_result", {"user_id": [1, 2]})
    same_shape(got, RESULT)
    imsi = gw.line.ports()[0].imsi
    assert got == {**RESULT, "sn": SN, "result": [{**RESULT["result"][0], "imsi": imsi}]}


async def test_delivery_pushes_match_samples(make_gw: GwFactory) -> None:
    gw = await make_gw(lines={"sim": {"report_delay_ms": 51_000}})
    pushes = await capture_pushes(gw)
    await gw.rt.start_worker()
    gw.clock.set(at("2016-07-12 01:46:02"))
    await gw.post("/api/send_sms", {"text": "hi", "port": [1], "param": [{"number": "10086"}]})
    ids = await gw.message_ids()
    await gw.settle(ids, State.SENT)
    await gw.clock.advance(51)
    await gw.settle(ids, State.DELIVERED)
    results = pushes.of("sms_result")
    assert [r["status"] for r in results] == ["SENT_OK", "DELIVERED"]
    sample_body = {"sn": SN, "sms_result": [results[-1]]}
    same_shape(sample_body, PUSH_RESULT_AMENDED)
    imsi = gw.line.ports()[1].imsi
    first_ref = results[0]["ref_id"]
    assert results[-1] == {
        **PUSH_RESULT_AMENDED["sms_result"][0],
        "ref_id": first_ref,
        "imsi": imsi,
    }
    delivered = [b for b in pushes.bodies if "sms_deliver_status" in b]
    assert len(delivered) == 1
    same_shape(delivered[0], PUSH_DELIVER)
    item = delivered[0]["sms_deliver_status"][0]
    assert item["time"] != results[0]["time"]  # the report's arrival time (spec §7)
    assert {**item, "time": "t"} == {
        **PUSH_DELIVER["sms_deliver_status"][0],
        "time": "t",
        "ref_id": first_ref,
        "imsi": imsi,
    }
    assert all(b["sn"] == SN and "error_code" not in b for b in pushes.bodies)


async def test_incoming_sample_and_push(gw: Gw) -> None:
    pushes = await capture_pushes(gw)
    ports = gw.line.ports()
    for i in range(4):
        await gw.sv.inbound.receive(
            "sim", [IncomingSms(1, f"55500{i}", "", f"old {i}", gw.clock.now_ms())], ports
        )
    await gw.get("/api/query_incoming_sms", flag="unread")  # reading marks the 4 read
    gw.clock.set(at("2016-07-12 15:46:18"))
    sms = IncomingSms(1, "6717", ports[1].number, "test", gw.clock.now_ms(), "+8613800757511")
    await gw.sv.inbound.receive(
        "sim", [sms, IncomingSms(2, "6718", "", "t2", gw.clock.now_ms())], ports
    )
    got = await gw.get("/api/query_incoming_sms", incoming_sms_id=4, flag="all")
    same_shape(got, INCOMING)
    assert got["read"] == 4
    assert got["unread"] == 2
    first = got["sms"][0]
    assert first == {**INCOMING["sms"][0], "incoming_sms_id": 5, "imsi": ports[1].imsi}
    pushed = [b for b in pushes.bodies if "sms" in b]
    same_shape(pushed[-1], {"sn": "x", "sms": [{**PUSH_SMS["sms"][0], "imsi": "x"}]})
    assert pushed[-1]["sms"][0] == first  # the push and the query agree


async def test_queue_ussd_and_register_samples(gw: Gw) -> None:
    assert await gw.get("/api/query_sms_in_queue") == {**IN_QUEUE, "sn": SN}
    assert await gw.get("/api/query_sms_queue") == {**IN_QUEUE, "sn": SN}  # Python client's path
    pushes = await capture_pushes(gw)
    gw.line.set_port(0, registered=False)
    got = await gw.post("/api/send_ussd", {"port": [0, 2], "text": "*100#"})
    assert got == {**USSD, "sn": SN}
    reply = await gw.get("/api/query_ussd_reply", port="1,2")
    same_shape(reply, USSD_REPLY)
    assert reply["reply"][0] == {"port": 1, "text": " "}
    assert reply["reply"][1]["text"].startswith("Balance: ")
    same_shape(pushes.bodies[-1], PUSH_USSD)
    assert pushes.bodies[-1]["ussd"] == [reply["reply"][1]]
    await gw.rt.start_worker()  # the line reports port changes to the runtime once started
    await gw.line.change_port(0, registered=True)
    await gw.line.change_port(3, registered=False)
    regs = pushes.of("register")
    same_shape({"sn": SN, "register": regs}, PUSH_REGISTER)
    p0, _p3 = gw.line.ports()[0], gw.line.ports()[3]
    assert regs[0] | {"sequence": 0} == {
        "port": 0,
        "iccid": p0.iccid,
        "imsi": p0.imsi,
        "number": p0.number,
        "status": "up",
        "sequence": 0,
        "slot": 255,
    }
    assert (regs[1]["port"], regs[1]["status"], regs[1]["imsi"], regs[1]["iccid"]) == (
        3,
        "down",
        "<NULL>",
        "<NULL>",
    )
