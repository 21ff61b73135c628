"""Renderings without a database: rows, pages, ports and times (spec §3.3, §3.5, §7)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from simgate.api.dialects.openvox import render
from simgate.api.dialects.openvox.envelope import Paged
from simgate.domain.messages import State
from simgate.domain.records import MessageRecord
from simgate.lines.base import Line
from simgate.lines.sim import SimLine
from simgate.settings import SimLineSettings
from simgate.testing.clock import FakeClock
from tests.support.examples import examples
from tests.support.push_events import inbound, message

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _lines() -> dict[str, Line]:
    return {"sim": SimLine("sim", SimLineSettings(ports=2, seed=1), FakeClock())}


def _message(**kw: Any) -> MessageRecord:
    """An OpenVox send, SENT on port 1 of ``sim`` (the shared record, changed)."""
    openvox: dict[str, Any] = dict(
        dialect="openvox",
        recipient="10086",
        text="hi",
        state=State.SENT,
        report_requested=False,
        price_micros=0,
        charge_micros=0,
        first_ref=None,
        parts_reported=0,
        status_code=None,
        queued_ms=None,
        submitting_ms=None,
        sent_ms=None,
        delivered_ms=None,
        updated_ms=T0,
    )
    return message(**{**openvox, **kw})


def test_outbox_row_has_a_string_id_one_based_port_and_local_time() -> None:
    lines = _lines()
    row = render.outbox_row(_message(), lines, "Asia/Shanghai")
    assert row == {
        "id": "2601010000000000001",
        "port": 2,
        "port_name": lines["sim"].ports()[1].name,
        "phonenumber": "10086",
        "time": "2026-01-01 08:00:00",
        "message": "hi",
        "status": "SENT",
    }
    assert render.outbox_row(_message(state=State.DELIVERED), lines, "UTC")["status"] == "DELIVERD"
    assert render.outbox_row(_message(state=State.EXPIRED), lines, "UTC")["status"] == "FAILED"
    unsent = render.outbox_row(_message(port=None, line=None), lines, "UTC")
    assert (unsent["port"], unsent["port_name"]) == (0, "")


def test_inbox_row() -> None:
    record = inbound(
        id=2601010000000000002,
        line="gone",
        port=0,
        sender="+8613800138000",
        recipient="",
        text="你好",
        smsc="+8613800100500",
        received_ms=T0,
    )
    assert render.inbox_row(record, _lines(), "UTC") == {
        "id": "2601010000000000002",
        "port": 1,
        "port_name": "gsm-1.1",  # the line is no longer configured: the default name (§7)
        "phonenumber": "+8613800138000",
        "time": "2026-01-01 00:00:00",
        "message": "你好",
        "smsc": "+8613800100500",
        "imsi": "460001234567890",
    }


def test_page_data_counts_pages() -> None:
    assert render.page_data(0, 1, 50, []) == Paged(rows=[], total=0, current_page=1, pages=0)
    assert render.page_data(101, 3, 50, [{"id": "1"}]) == Paged(
        rows=[{"id": "1"}], total=101, current_page=3, pages=3
    )


def test_filter_times_in_every_accepted_spelling() -> None:
    berlin = render.parse_time("2026-01-01 01:00:00", "Europe/Berlin")
    assert berlin == T0
    for text in ("2026-01-01 01:00", "2026-01-01T01:00:00", "2026/01/01 01:00:00"):
        assert render.parse_time(text, "Europe/Berlin") == T0
    assert render.parse_time("2026-01-01", "UTC") == T0
    assert render.parse_time("2026/01/01", "UTC", end_of_day=True) == T0 + 86_399_999
    assert render.parse_time("2026-01-01 00:00:00", "UTC", end_of_day=True) == T0
    assert render.parse_time("yesterday", "UTC") is None
    assert render.format_time(T0, "No/Such_Zone") == "2026-01-01 00:00:00"  # unknown: UTC


@settings(max_examples=examples(300))
@given(
    ms=st.integers(min_value=0, max_value=4_102_444_800_000),  # 1970 to 2100
    tz=st.sampled_from(
        [
            "UTC",
            "Asia/Shanghai",
            "Europe/Berlin",
            "America/New_York",
            "Asia/Kolkata",
            "Australia/Lord_Howe",
            "Asia/Kathmandu",
            "Pacific/Chatham",
            "No/Such_Zone",
        ]
    ),
)
def test_format_time_is_the_zone_s_wall_clock(ms: int, tz: str) -> None:
    """The cached-offset arithmetic says what ``datetime`` with the zone says, to the second
    (on either side of daylight-saving changes too: Berlin, New York, Lord Howe's 30 min)."""
    wall = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(render.zone(tz))
    assert render.format_time(ms, tz) == wall.strftime(render.TIME_FORMAT)


def test_format_time_around_a_daylight_saving_change() -> None:
    change = 1_774_746_000_000  # 2026-03-29T01:00:00Z: Berlin goes from +01:00 to +02:00
    assert render.format_time(change - 1, "Europe/Berlin") == "2026-03-29 01:59:59"
    assert render.format_time(change, "Europe/Berlin") == "2026-03-29 03:00:00"


def test_send_status_of_every_state() -> None:
    expected = {
        State.SENT: "SENT",
        State.DELIVERED: "SENT",
        State.FAILED: "FAILED",
        State.EXPIRED: "FAILED",
        State.REJECTED: "FAILED",
    }
    for state in State:
        assert render.SEND_STATUS.get(state, render.SENDING) == expected.get(state, "SENDING")
