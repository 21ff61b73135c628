"""Pure push formats against the vendor's samples (spec §1.9, §1.10) and the status table."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from simgate.api.dialects.itnio import render
from simgate.api.dialects.itnio.push import mo_body, mo_push, report_body, report_push
from simgate.domain.accounts import Account, App, AppKind
from simgate.domain.messages import FINAL, State
from simgate.domain.records import InboundRecord
from tests.support.push_events import message
from tests.support.shapes import assert_same_shape

REPORT_SAMPLE = {
    "appId": "4luaKsL2",
    "msgid": "2108021059531000096",
    "mobile": "91856321413",
    "status": 0,
    "reason": "0",
    "timestamp": 1629801177192,
    "mcc": "404",
    "mnc": "-1",
    "pricedetail": {"pay": "0.02", "currency": "USD", "chargeCnt": 2, "price": "0.01"},
}
MO_SAMPLE = {
    "msgid": "2108021059531000097",
    "mobile": "91856321412",
    "reply_time": "2021-08-24 18:32:57",
    "content": "hello",
    "sendid": "8613800138000",
    "mcc": 404,
    "mnc": 45,
    "operator": "Airtel",
    "pricedetail": {"pay": "0", "currency": "USD", "chargeCnt": 1, "price": "0"},
}

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
    accepted_ms=1629801170000,
    queued_ms=1629801170000,
    submitting_ms=None,
    sent_ms=1629801171000,
    delivered_ms=1629801177192,
    updated_ms=1629801177192,
)
APP = App(
    1,
    "4luaKsL2",
    1,
    AppKind.SMS,
    "sms",
    {"report_url": "https://c.example/r", "mo_url": "https://c.example/m"},
)
ACCOUNT = Account(1, "acme", "USD", "Asia/Kolkata", 0, 0, 0, False)


def test_report_body_matches_vendor_sample() -> None:
    body = report_body(MSG, "4luaKsL2")
    assert_same_shape(body, REPORT_SAMPLE)
    assert body == REPORT_SAMPLE  # "mcc" "404": India, the destination's country
    assert "orderId" not in body


@pytest.mark.parametrize(
    ("recipient", "mcc"),
    [
        ("91856321413", "404"),
        ("12015550123", "310"),
        ("447700900123", "234"),
        ("4915112345678", "262"),
        ("33612345678", "208"),
        ("8613800138000", "460"),
        ("88213", "-1"),  # non-geographic: no country, so no MCC
    ],
)
def test_report_mcc_is_the_destination_country(recipient: str, mcc: str) -> None:
    """pushSmsReport ``mcc`` is the destination country's MCC; ``mnc`` stays "-1" (the
    destination network is unknown to a SIM gateway) (spec §1.9, "Amendments")."""
    body = report_body(dataclasses.replace(MSG, recipient=recipient), "4luaKsL2")
    assert (body["mobile"], body["mcc"], body["mnc"]) == (recipient, mcc, "-1")


def test_report_body_carries_order_id_and_failure() -> None:
    failed = dataclasses.replace(
        MSG,
        client_ref="o-1",
        state=State.FAILED,
        delivered_ms=None,
        failed_ms=1629801177000,
        status_code=34,
        error_text="absent subscriber",
    )
    body = report_body(failed, "4luaKsL2")
    assert (body["orderId"], body["status"], body["reason"], body["timestamp"]) == (
        "o-1",
        34,
        "absent subscriber",
        1629801177000,
    )
    expired = dataclasses.replace(MSG, state=State.EXPIRED, status_code=None, expired_ms=5)
    assert (report_body(expired, "a")["status"], report_body(expired, "a")["reason"]) == (
        1,
        "expired",
    )


def test_report_push_request() -> None:
    push = report_push(MSG, APP)
    assert (push.request.method, push.request.url, push.order_key, push.kind) == (
        "POST",
        "https://c.example/r",
        f"msg:{MSG.id}",
        "itnio.report",
    )
    assert push.request.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert json.loads(push.request.body or b"")["msgid"] == str(MSG.id)


def test_mo_body_matches_vendor_sample() -> None:
    r = InboundRecord(
        2108021059531000097,
        1,
        "sim",
        0,
        "91856321412",
        "8613800138000",
        "hello",
        "",
        "404450123456789",
        1,
        1629810177000,
        False,
    )
    body = mo_body(r, ACCOUNT)
    assert_same_shape(body, MO_SAMPLE)
    assert body["reply_time"] == "2021-08-24 18:32:57"  # Asia/Kolkata, +05:30
    assert (body["mcc"], body["mnc"]) == (404, 45)
    assert mo_push(r, ACCOUNT, APP).request.url == "https://c.example/m"


@pytest.mark.parametrize(
    ("imsi", "expected"),
    [("310150123456789", (310, 150)), ("46000123", (460, 0)), ("", (-1, -1)), ("12x45", (-1, -1))],
)
def test_mcc_mnc_from_imsi(imsi: str, expected: tuple[int, int]) -> None:
    assert render.mcc_mnc(imsi) == expected


def test_status_table_covers_every_state() -> None:
    assert set(render.STATUS) == set(State)
    for state in FINAL:
        assert render.STATUS[state][2] is not None  # every final state is listed by getSentRcd
    assert render.SENT_RCD_STATES == (
        State.SENT,
        State.DELIVERED,
        State.FAILED,
        State.EXPIRED,
        State.REJECTED,
    )


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2021-02-12T09:30:03+08:00", 1613093403000),
        ("2021-02-12T09:30:03 08:00", 1613093403000),
        ("2021-02-12T01:30:03Z", 1613093403000),
        ("2021-02-12T01:30:03.5+00:00", 1613093403500),
        ("2021-02-12T09:30:03", None),
        ("2021-02-12", None),
        ("2021-13-12T09:30:03+08:00", None),
        ("x" * 100, None),
    ],
)
def test_parse_iso(text: str, ms: int | None) -> None:
    assert render.parse_iso(text) == ms


def test_iso_renders_account_zone() -> None:
    assert render.iso(1613093403000, "Asia/Shanghai") == "2021-02-12T09:30:03+08:00"
    assert render.iso(1613093403000, "UTC") == "2021-02-12T01:30:03+00:00"
    assert render.iso(None, "UTC") == ""


@pytest.mark.parametrize(
    "tz",
    [
        "UTC",
        "Asia/Shanghai",
        "Asia/Kathmandu",
        "America/New_York",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
        "Pacific/Kiritimati",  # -10:40 until 1979: local quarters straddle UTC ones
    ],
)
def test_iso_agrees_with_datetime_across_transitions(tz: str) -> None:
    def expected(ms: int) -> str:
        return datetime.fromtimestamp(ms // 1000, ZoneInfo(tz)).isoformat(timespec="seconds")

    rng = random.Random(tz)
    for _ in range(2000):
        ms = rng.randrange(0, 4_102_444_800_000)  # 1970..2100
        assert render.iso(ms, tz) == expected(ms), ms
    # quarter hours of 2026 (DST transitions included), one second either side
    start = 1_767_225_600 // 900
    for quarter in range(start, start + 365 * 96):
        for ms in (quarter * 900_000 - 1000, quarter * 900_000):
            assert render.iso(ms, tz) == expected(ms), ms


def test_signing_secret_of_the_app_is_passed_to_the_engine() -> None:
    assert report_push(MSG, APP).signing_secret is None
    signed = dataclasses.replace(APP, push={**APP.push, "signing_secret": "whsec-1"})
    assert report_push(MSG, signed).signing_secret == "whsec-1"
