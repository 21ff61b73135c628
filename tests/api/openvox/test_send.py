"""/sms/get_valid_spans and /sms/send (spec §3.3, §7): fields, modes, hostile input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from simgate.domain.messages import State
from simgate.lines.sim import SimLine
from simgate.testing.clock import FakeClock
from tests.api.openvox.conftest import OV, open_ov

NUMBER = "8613800138000"


async def _records(ov: OV, ids: list[str]) -> list[Any]:
    async with ov.rt.store.db.read() as conn:
        return await ov.rt.store.messages.get(conn, [int(i) for i in ids])


async def _run(ov: OV, uri: str, body: dict[str, Any], step: float = 0.1) -> dict[str, Any]:
    """Run a request that waits on the clock (sync mode), advancing the fake clock."""
    task = asyncio.create_task(ov.post(uri, body))
    for _ in range(2000):
        if task.done():
            break
        await ov.clock.advance(step)
        await asyncio.sleep(0.002)
    return await task


async def test_get_valid_spans_lists_ports_one_based(ov: OV) -> None:
    line = ov.sv.lines["sim"]
    assert isinstance(line, SimLine)
    line.set_port(2, registered=False)
    doc = await ov.post("/sms/get_valid_spans")
    assert doc["code"] == 200
    assert doc["msg"] == "success"
    spans = doc["data"]
    assert [s["port"] for s in spans] == list(range(1, len(line.ports()) + 1))
    assert spans[0] == {"port": 1, "port_name": "gsm-1.1", "status": 1}
    assert spans[2]["status"] == 0
    assert all(s["status"] == 1 for i, s in enumerate(spans) if i != 2)


async def test_async_send_answers_at_once_with_one_item_per_number(ov: OV) -> None:
    doc = await ov.post(
        "/sms/send",
        {"spans": [2], "dest_num": f"{NUMBER}, 447700900123,abc", "msg": "hello", "mode": 0},
    )
    assert doc["code"] == 200
    items = doc["data"]
    assert [i["dest_num"] for i in items] == [NUMBER, "447700900123", "abc"]
    assert [i["status"] for i in items] == ["SENDING", "SENDING", "FAILED"]
    assert items[0]["port"] == 2
    assert items[2] == {
        "id": "",
        "dest_num": "abc",
        "port": 0,
        "status": "FAILED",
        "error": "invalid number",
    }
    rows = await _records(ov, [items[0]["id"], items[1]["id"]])
    assert {r.recipient for r in rows} == {NUMBER, "447700900123"}
    assert all(r.dialect == "openvox" and r.text == "hello" for r in rows)
    assert all(r.port_hint == "1" and r.state is State.QUEUED for r in rows)  # span 2 = index 1


async def test_fields_inside_data_and_string_numbers(ov: OV) -> None:
    doc = await ov.post(
        "/sms/send", {"data": {"spans": ["1", "3"], "dest_num": NUMBER, "msg": "x", "mode": "0"}}
    )
    assert doc["code"] == 200
    (rec,) = await _records(ov, [doc["data"][0]["id"]])
    assert rec.port_hint == "0,2"
    assert doc["data"][0]["port"] == 0  # two spans allowed: not known until sent


async def test_sync_send_waits_for_the_line(ov: OV) -> None:
    await ov.rt.start_worker()
    doc = await _run(ov, "/sms/send", {"spans": [3], "dest_num": NUMBER, "msg": "hi", "mode": 1})
    assert doc["code"] == 200
    (item,) = doc["data"]
    assert item["status"] == "SENT"
    assert item["port"] == 3
    (rec,) = await _records(ov, [item["id"]])
    assert rec.state in (State.SENT, State.DELIVERED)
    assert rec.port == 2


async def test_sync_send_times_out_as_sending_without_a_worker(ov: OV) -> None:
    doc = await _run(ov, "/sms/send", {"dest_num": NUMBER, "msg": "hi", "mode": 1}, step=1.0)
    assert doc["code"] == 200
    assert doc["data"][0]["status"] == "SENDING"
    assert ov.clock.now_ms() >= 1_767_225_600_000 + 30_000  # waited the configured 30 s


@pytest.fixture
async def failing(backend: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[OV]:
    rt, handle = await open_ov(
        backend, tmp_path, clock, lines={"sim": {"failure_ratio": 1.0}}, openvox={"line": "sim"}
    )
    try:
        yield handle
    finally:
        await handle.client.aclose()
        await rt.close()


async def test_sync_send_reports_failed_when_the_line_refuses(failing: OV) -> None:
    await failing.rt.start_worker()
    doc = await _run(failing, "/sms/send", {"dest_num": NUMBER, "msg": "hi", "mode": 1})
    assert doc["code"] == 200
    assert doc["data"][0]["status"] == "FAILED"


BAD_SENDS: list[tuple[dict[str, Any], str]] = [
    ({"msg": "hi"}, "dest_num is required"),
    ({"dest_num": NUMBER}, "msg is required"),
    ({"dest_num": NUMBER, "msg": ""}, "msg is empty"),
    ({"dest_num": 8613800138000, "msg": "hi"}, "dest_num must be a string"),
    ({"dest_num": " , ,", "msg": "hi"}, "dest_num is empty"),
    ({"dest_num": NUMBER, "msg": ["hi"]}, "msg must be a string"),
    ({"dest_num": NUMBER, "msg": "x" * 100_000}, "msg is too long: 100000"),
    ({"dest_num": NUMBER, "msg": "hi", "mode": 2}, "mode must be"),
    ({"dest_num": NUMBER, "msg": "hi", "mode": "sync"}, "mode must be an integer"),
    ({"dest_num": NUMBER, "msg": "hi", "spans": [9]}, "unknown span 9"),
    ({"dest_num": NUMBER, "msg": "hi", "spans": [0]}, "unknown span 0"),
    ({"dest_num": NUMBER, "msg": "hi", "spans": ["a"]}, "spans must be an integer"),
    ({"dest_num": NUMBER, "msg": "hi", "spans": {"a": 1}}, "spans must be an integer"),
    ({"dest_num": NUMBER, "msg": "hi", "spans": [True]}, "spans must be an integer"),
    ({"dest_num": "abc,+,1-2", "msg": "hi"}, "no valid destination number"),
    ({"dest_num": ",".join([NUMBER] * 1001), "msg": "hi"}, "at most 1000"),
    ({"dest_num": NUMBER, "msg": "a\u0000b"}, "msg contains a NUL character"),
    ({"dest_num": NUMBER + "\u0000", "msg": "hi"}, "dest_num contains a NUL character"),
]


async def test_bad_send_requests_are_400(ov: OV) -> None:
    for body, words in BAD_SENDS:  # one app for the whole table keeps the suite fast
        doc = await ov.post("/sms/send", body)
        assert (doc["code"], doc["data"]) == (400, []), body
        assert words in doc["msg"], (body, doc["msg"])
    async with ov.rt.store.db.read() as conn:
        assert await ov.rt.store.messages.page(conn, account_id=ov.account.id) == []


async def test_hostile_text_is_stored_verbatim(ov: OV) -> None:
    text = "<script>alert(1)</script>' OR 1=1; -- \u202e 😀 %00 ${x}"
    doc = await ov.post("/sms/send", {"dest_num": NUMBER, "msg": text})
    assert doc["code"] == 200
    (rec,) = await _records(ov, [doc["data"][0]["id"]])
    assert rec.text == text


async def test_short_codes_are_dialled_as_given(ov: OV) -> None:
    doc = await ov.post("/sms/send", {"dest_num": "10086,+8613800138000", "msg": "cx"})
    assert doc["code"] == 200
    rows = await _records(ov, [i["id"] for i in doc["data"]])
    assert sorted(r.recipient for r in rows) == ["+8613800138000", "10086"]


async def test_insufficient_balance_is_400_and_queues_nothing(ov: OV) -> None:
    poor = await ov.sv.accounts.create_account(name="poor", balance="0")
    await ov.sv.accounts.create_user(poor.id, username="poor", password="poor-pass")
    doc = await ov.post(
        "/sms/send", {"username": "poor", "password": "poor-pass", "dest_num": NUMBER, "msg": "x"}
    )
    assert doc["code"] == 400
    assert "insufficient balance" in doc["msg"]
    async with ov.rt.store.db.read() as conn:
        assert await ov.rt.store.messages.page(conn, account_id=poor.id) == []
