"""/smsoutbox/get and /smsinbox/get (spec §3.3, §7): rows, statuses, pages, filters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from simgate.domain.messages import State
from simgate.lines.base import IncomingSms
from simgate.testing.clock import FakeClock
from tests.api.openvox.conftest import OV, open_ov

T0 = "2026-01-01 00:00:00"  # FakeClock's start, UTC


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"86138{i:08d}" for i in range(start, start + n)]


async def send(ov: OV, nums: list[str], text: str = "hello") -> list[str]:
    doc = await ov.post("/sms/send", {"dest_num": ",".join(nums), "msg": text})
    assert doc["code"] == 200
    return [i["id"] for i in doc["data"]]


async def settle(ov: OV, ids: list[str], done: set[State]) -> dict[int, Any]:
    for _ in range(500):
        async with ov.rt.store.db.read() as conn:
            rows = await ov.rt.store.messages.get(conn, [int(i) for i in ids])
        if len(rows) == len(ids) and all(r.state in done for r in rows):
            return {r.id: r for r in rows}
        await ov.clock.advance(0.05)
        await asyncio.sleep(0.002)
    raise AssertionError([r.state.name for r in rows])


@pytest.fixture
async def slow_reports(backend: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[OV]:
    rt, handle = await open_ov(
        backend,
        tmp_path,
        clock,
        lines={"sim": {"delivery_ratio": 0.5, "report_delay_ms": 60_000}},
    )
    try:
        yield handle
    finally:
        await handle.client.aclose()
        await rt.close()


async def test_outbox_rows_go_from_sent_to_deliverd_or_failed(slow_reports: OV) -> None:
    ov = slow_reports
    ids = await send(ov, numbers(20), "status test")
    empty = await ov.post("/smsoutbox/get")
    assert empty["data"] == [{"total": 0, "current_page": 1, "pages": 0, "records": []}]

    await ov.rt.start_worker()
    sent = await settle(ov, ids, {State.SENT})
    doc = await ov.post("/smsoutbox/get")
    assert doc["code"] == 200
    (page,) = doc["data"]
    assert (page["total"], page["pages"], page["current_page"]) == (20, 1, 1)
    by_id = {r["id"]: r for r in page["records"]}
    assert set(by_id) == set(ids)
    for mid, rec in sent.items():
        row = by_id[str(mid)]
        assert set(row) == {"id", "port", "port_name", "phonenumber", "time", "message", "status"}
        assert row["status"] == "SENT"
        assert row["port"] == rec.port + 1
        assert row["port_name"] == f"gsm-1.{rec.port + 1}"
        assert row["phonenumber"] == rec.recipient
        assert row["message"] == "status test"
        assert row["time"] == T0

    await ov.clock.advance(61)  # the sim line's report delay
    final = await settle(ov, ids, {State.DELIVERED, State.FAILED})
    records = (await ov.post("/smsoutbox/get"))["data"][0]["records"]
    want = {
        str(m): "DELIVERD" if r.state is State.DELIVERED else "FAILED" for m, r in final.items()
    }
    assert {r["id"]: r["status"] for r in records} == want
    assert set(want.values()) == {"DELIVERD", "FAILED"}  # seed 1 gives both at ratio 0.5


async def test_pages_filters_and_time_zone(ov: OV) -> None:
    await ov.rt.start_worker()
    early = await send(ov, numbers(70))
    await ov.clock.advance(3600)
    late = await send(ov, [*numbers(50, 70), "447700900123"])
    await settle(ov, early + late, {State.DELIVERED})

    page1 = (await ov.post("/smsoutbox/get"))["data"][0]
    assert (page1["total"], page1["pages"], len(page1["records"])) == (121, 3, 50)
    assert page1["records"][0]["id"] == max(early + late, key=int)  # newest first
    page3 = (await ov.post("/smsoutbox/get", {"current_page": 3}))["data"][0]
    assert (page3["current_page"], len(page3["records"])) == (3, 21)
    seen = {
        r["id"]
        for p in (1, 2, 3)
        for r in (await ov.post("/smsoutbox/get", {"current_page": p}))["data"][0]["records"]
    }
    assert seen == set(early + late)
    beyond = (await ov.post("/smsoutbox/get", {"current_page": 9}))["data"][0]
    assert (beyond["total"], beyond["records"]) == (121, [])

    one = await ov.post("/smsoutbox/get", {"phone_number_filter": "+44 7700 900123"})
    assert [r["phonenumber"] for r in one["data"][0]["records"]] == ["447700900123"]
    window = {
        "start_datetime_filter": "2026-01-01 00:30:00",
        "end_datetime_filter": "2026-01-01 02:00:00",
    }
    doc = await ov.post("/smsoutbox/get", window)
    assert doc["data"][0]["total"] == 51
    assert {r["id"] for r in doc["data"][0]["records"]} <= set(late)
    doc = await ov.post("/smsoutbox/get", {"end_datetime_filter": "2026-01-01 00:59:59"})
    assert doc["data"][0]["total"] == 70
    doc = await ov.post("/smsoutbox/get", {"end_datetime_filter": "2026-01-01"})  # whole day
    assert doc["data"][0]["total"] == 121

    # The same data seen from an account in UTC+8: times shown and read in its zone.
    tz = await ov.sv.accounts.create_account(name="east", balance="10", timezone="Asia/Shanghai")
    await ov.sv.accounts.create_user(tz.id, username="east", password="east-pass")
    creds = {"username": "east", "password": "east-pass"}
    ids = await send_as(ov, creds, "8613800000001")
    await settle(ov, ids, {State.DELIVERED})
    row = (await ov.post("/smsoutbox/get", creds))["data"][0]["records"][0]
    assert row["time"] == "2026-01-01 09:00:00"
    hit = await ov.post("/smsoutbox/get", {**creds, "start_datetime_filter": "2026-01-01 09:00:00"})
    miss = await ov.post(
        "/smsoutbox/get", {**creds, "start_datetime_filter": "2026-01-01 09:00:01"}
    )
    assert (hit["data"][0]["total"], miss["data"][0]["total"]) == (1, 0)


async def send_as(ov: OV, creds: dict[str, str], number: str) -> list[str]:
    doc = await ov.post("/sms/send", {**creds, "dest_num": number, "msg": "tz"})
    assert doc["code"] == 200
    return [i["id"] for i in doc["data"]]


BAD_FILTERS: list[tuple[dict[str, Any], str]] = [
    ({"current_page": 0}, "current_page must be"),
    ({"current_page": "two"}, "current_page must be an integer"),
    ({"current_page": 10**12}, "current_page must be"),
    ({"current_page": 1.5}, "current_page must be an integer"),
    ({"phone_number_filter": 13800138000}, "phone_number_filter must be a string"),
    ({"start_datetime_filter": "yesterday"}, "start_datetime_filter must be a time"),
    ({"end_datetime_filter": "2026-13-45 99:00:00"}, "end_datetime_filter must be a time"),
    ({"start_datetime_filter": ["2026-01-01"]}, "must be a string"),
    (
        {"start_datetime_filter": "2026-01-02", "end_datetime_filter": "2026-01-01 00:00:00"},
        "after",
    ),
]


async def test_bad_box_filters_are_400(ov: OV) -> None:
    for uri in ("/smsoutbox/get", "/smsinbox/get"):
        for body, words in BAD_FILTERS:
            doc = await ov.post(uri, body)
            assert (doc["code"], doc["data"]) == (400, []), (uri, body)
            assert words in doc["msg"], (uri, body, doc["msg"])


async def test_inbox_lists_incoming_sms(ov: OV) -> None:
    line = ov.sv.lines["sim"]
    now = ov.clock.now_ms()
    sms = [
        IncomingSms(
            port=1,
            sender="+8613900000001",
            recipient="",
            text="first",
            received_ms=now,
            smsc="+8613800100500",
        ),
        IncomingSms(port=4, sender="10086", recipient="", text="balance 5.00", received_ms=now),
    ]
    ids = await ov.sv.inbound.receive("sim", sms, line.ports())
    doc = await ov.post("/smsinbox/get")
    assert doc["code"] == 200
    (page,) = doc["data"]
    assert (page["total"], page["pages"]) == (2, 1)
    rows = {r["id"]: r for r in page["records"]}
    first = rows[str(ids[0])]
    assert first == {
        "id": str(ids[0]),
        "port": 2,
        "port_name": "gsm-1.2",
        "phonenumber": "+8613900000001",
        "time": T0,
        "message": "first",
        "smsc": "+8613800100500",
        "imsi": line.ports()[1].imsi,
    }
    assert rows[str(ids[1])]["port"] == 5
    only = await ov.post("/smsinbox/get", {"phone_number_filter": "8613900000001"})
    assert [r["message"] for r in only["data"][0]["records"]] == ["first"]
    short = await ov.post("/smsinbox/get", {"phone_number_filter": "10086"})
    assert [r["message"] for r in short["data"][0]["records"]] == ["balance 5.00"]
    none = await ov.post("/smsinbox/get", {"start_datetime_filter": "2026-01-01 00:00:01"})
    assert none["data"][0]["total"] == 0
