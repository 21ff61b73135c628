"""itniotech renderings without a database: getReport, getSentRcd and recordMo items."""

from __future__ import annotations

import dataclasses

import pytest

from simgate.api.dialects.itnio import render
from simgate.domain.messages import State
from simgate.domain.records import SentRow
from tests.support.push_events import inbound, message

MSG = message(
    id=2108021059531000096,
    app_id=1,
    recipient="91856321413",
    text="x" * 200,
    parts=2,
    port=0,
    charge_micros=20_000,
    first_ref=None,
    parts_ok=2,
    parts_reported=2,
    accepted_ms=1613093400000,
    queued_ms=1613093400000,
    submitting_ms=None,
    sent_ms=1613093401000,
    delivered_ms=1613093403000,
    updated_ms=1613093403000,
)


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (State.SENT, "0"),
        (State.DELIVERED, "0"),
        (State.FAILED, "2"),
        (State.EXPIRED, "2"),
        (State.REJECTED, "2"),
    ],
)
def test_sent_row_item(state: State, status: str) -> None:
    item = render.sent_row_item(SentRow(7, "86138", state, 1613093403000), "Asia/Shanghai")
    expected = "2021-02-12T09:30:03+08:00"
    assert item == {"msgId": "7", "number": "86138", "receiveTime": expected, "status": status}


def test_sent_row_item_without_a_time_has_an_empty_receive_time() -> None:
    item = render.sent_row_item(SentRow(7, "86138", State.SENT, None), "UTC")
    assert item["receiveTime"] == ""


def test_sent_rcd_lists_sent_and_final_states_only() -> None:
    assert set(render.SENT_RCD_STATES) == {
        State.SENT,
        State.DELIVERED,
        State.FAILED,
        State.EXPIRED,
        State.REJECTED,
    }


def test_report_item_of_a_delivered_message() -> None:
    assert render.report_item(MSG, "Asia/Shanghai") == {
        "msgId": "2108021059531000096",
        "number": "91856321413",
        "receiveTime": "2021-02-12T09:30:03+08:00",
        "status": "0",
        "pricedetail": {"pay": "0.02", "chargeCnt": 2, "currency": "USD", "price": "0.01"},
    }


@pytest.mark.parametrize(
    ("state", "requested", "status", "time"),
    [
        (State.QUEUED, True, "-1", ""),
        (State.SENT, True, "-1", "2021-02-12T01:30:01+00:00"),
        (State.SENT, False, "0", "2021-02-12T01:30:01+00:00"),
        (State.FAILED, True, "1", "2021-02-12T01:30:05+00:00"),
        (State.UNKNOWN, False, "-1", ""),
    ],
)
def test_report_item_status_and_time(state: State, requested: bool, status: str, time: str) -> None:
    sent = None if state in (State.QUEUED, State.UNKNOWN) else MSG.sent_ms
    m = dataclasses.replace(
        MSG, state=state, report_requested=requested, sent_ms=sent, failed_ms=1613093405000
    )
    item = render.report_item(m, "UTC")
    assert (item["status"], item["receiveTime"]) == (status, time)


def test_mo_record_is_free_and_names_the_network() -> None:
    record = inbound(
        id=1,
        port=0,
        sender="919876543210",
        text="hello",
        smsc="",
        imsi="404450123456789",
        received_ms=1613093403000,
    )
    item = render.mo_record(record, "Asia/Shanghai", "USD")
    assert item["number"] == "919876543210"
    assert item["sendId"] == "8613800138000"
    assert item["receiveTime"] == "2021-02-12T09:30:03+08:00"
    assert (item["mcc"], item["mnc"]) == (404, 45)
    assert item["pricedetail"] == {"pay": "0", "chargeCnt": 1, "currency": "USD", "price": "0"}
