"""Renderings without a database: the incoming item (spec §2.5); the others in test_units."""

from __future__ import annotations

from simgate.api.dialects.dinstar import render
from tests.support.push_events import inbound


def test_incoming_item_carries_the_gateway_number_and_local_time() -> None:
    record = inbound(
        id=2601010000000000001,
        port=3,
        sender="+8613800138000",
        recipient="",
        text="你好",
        smsc="+8613800100500",
        received_ms=1_767_225_600_000,  # 2026-01-01T00:00:00Z
    )
    item = render.incoming_sms(record, seq=42, port=5, tz="Asia/Shanghai")
    assert item == {
        "incoming_sms_id": 42,
        "port": 5,
        "number": "+8613800138000",
        "smsc": "+8613800100500",
        "timestamp": "2026-01-01 08:00:00",
        "text": "你好",
        "imsi": "460001234567890",
    }
    assert list(item) == ["incoming_sms_id", "port", "number", "smsc", "timestamp", "text", "imsi"]
