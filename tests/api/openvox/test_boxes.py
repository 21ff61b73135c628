"""/smsoutbox/get and /smsinbox/get (spec §3.3, §7, Amendments): rows, statuses, pages, filters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from simgate.domain.ids import issued_at_ms
from simgate.domain.messages import State
from simgate.lines.base import IncomingSms
from simgate.testing.clock import FakeClock
from tests.api.openvox.conftest import OV, numbers, open_ov, send, settle

T0 = "2026-01-01 00:00:00"  # FakeClock's start, UTC


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
    assert (empty["data"], empty["total"], empty["current_page"], empty["pages"]) == ([], 0, 1, 0)

    await ov.rt.start_worker()
    sent = await settle(ov, ids, {State.SENT})
    doc = await ov.post("/smsoutbox/get")
    assert doc["code"] == 200
    assert (doc["total"], doc["pages"], doc["current_page"]) == (20, 1, 1)
    by_id = {r["id"]: r for r in doc["data"]}
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
    records = (await ov.post("/smsoutbox/get"))["data"]
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
    # The same data seen from an account in UTC+8 (checked below). Sent now, before any
    # settle: settle moves the fake clock 50 ms a step until the line is done, so under load
    # a send after it would fall in 01:00:01 or later.
    tz = await ov.sv.accounts.create_account(name="east", balance="10", timezone="Asia/Shanghai")
    await ov.sv.accounts.create_user(tz.id, username="east", password="east-pass")
    creds = {"username": "east", "password": "east-pass"}
    east = await send_as(ov, creds, "8613800000001")
    await settle(ov, early + late + east, {State.DELIVERED})

    page1 = await ov.post("/smsoutbox/get")
    assert (page1["total"], page1["pages"], len(page1["data"])) == (121, 3, 50)
    assert page1["data"][0]["id"] == max(early + late, key=int)  # newest first
    page3 = await ov.post("/smsoutbox/get", {"current_page": 3})
    assert (page3["current_page"], len(page3["data"])) == (3, 21)
    seen = {
        r["id"]
        for p in (1, 2, 3)
        for r in (await ov.post("/smsoutbox/get", {"current_page": p}))["data"]
    }
    assert seen == set(early + late)
    beyond = await ov.post("/smsoutbox/get", {"current_page": 9})
    assert (beyond["total"], beyond["data"]) == (121, [])

    one = await ov.post("/smsoutbox/get", {"phone_number_filter": "+44 7700 900123"})
    assert [r["phonenumber"] for r in one["data"]] == ["447700900123"]
    window = {
        "start_datetime_filter": "2026-01-01 00:30:00",
        "end_datetime_filter": "2026-01-01 02:00:00",
    }
    doc = await ov.post("/smsoutbox/get", window)
    assert doc["total"] == 51
    assert {r["id"] for r in doc["data"]} <= set(late)
    doc = await ov.post("/smsoutbox/get", {"end_datetime_filter": "2026-01-01 00:59:59"})
    assert doc["total"] == 70
    doc = await ov.post("/smsoutbox/get", {"end_datetime_filter": "2026-01-01"})  # whole day
    assert doc["total"] == 121

    # The UTC+8 account's message: times shown and read in its zone. Its id carries the
    # second it was accepted in, the one the time filters select on (ids are time-ordered).
    row = (await ov.post("/smsoutbox/get", creds))["data"][0]
    assert row["id"] == east[0]
    assert row["time"] == "2026-01-01 09:00:00"
    assert issued_at_ms(int(row["id"])) == 1_767_229_200_000  # 2026-01-01 01:00:00 UTC
    hit = await ov.post("/smsoutbox/get", {**creds, "start_datetime_filter": "2026-01-01 09:00:00"})
    miss = await ov.post(
        "/smsoutbox/get", {**creds, "start_datetime_filter": "2026-01-01 09:00:01"}
    )
    assert (hit["total"], miss["total"]) == (1, 0)


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
    assert (doc["total"], doc["pages"]) == (2, 1)
    rows = {r["id"]: r for r in doc["data"]}
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
    assert [r["message"] for r in only["data"]] == ["first"]
    short = await ov.post("/smsinbox/get", {"phone_number_filter": "10086"})
    assert [r["message"] for r in short["data"]] == ["balance 5.00"]
    none = await ov.post("/smsinbox/get", {"start_datetime_filter": "2026-01-01 00:00:01"})
    assert none["total"] == 0


@pytest.mark.parametrize("uri", ["/smsoutbox/get", "/smsinbox/get"])
@pytest.mark.parametrize("field", ["start_datetime_filter", "end_datetime_filter"])
@pytest.mark.parametrize("when", ["2093-01-01 00:00:00", "9999-12-31", "1999-12-31 23:59:59"])
async def test_times_outside_the_id_range_are_a_400(
    ov: OV, uri: str, field: str, when: str
) -> None:
    """Message ids hold a two-digit year and must fit a BIGINT (issue 14 item 9): a filter
    before 2000 or after 2091 is refused in the envelope (code 400), not an overflow (500)."""
    doc = await ov.post(uri, {field: when})
    assert doc["code"] == 400, doc
    assert field in doc["msg"]
