"""Request parsing of the SMS endpoints without a database: send_sms and the result queries."""

from __future__ import annotations

from typing import Any

import pytest

from simgate.api.dialects.dinstar import render
from simgate.api.dialects.dinstar.ports import PortMap
from simgate.api.dialects.dinstar.settings import DinstarSettings
from simgate.api.dialects.dinstar.sms import EARLIEST_MS, parse_query, parse_send
from simgate.codecs.segments import Encoding
from simgate.domain.accounts import Account
from simgate.errors import ContentTooLong, InvalidInput, TooManyNumbers
from simgate.lines.base import Line
from simgate.lines.sim import SimLine
from simgate.services.dinstar import MessageQuery
from simgate.services.sending import Recipient
from simgate.settings import SimLineSettings
from simgate.testing.clock import FakeClock

CFG = DinstarSettings(max_numbers=3, max_text_bytes=20, max_query_numbers=2, result_limit=50)
ACCOUNT = Account(
    id=7,
    name="acme",
    currency="USD",
    timezone="Asia/Shanghai",
    balance_micros=0,
    gift_micros=0,
    credit_micros=0,
    locked=False,
)


def _ports() -> PortMap:
    lines: dict[str, Line] = {
        "a": SimLine("a", SimLineSettings(ports=2, seed=1), FakeClock()),
        "b": SimLine("b", SimLineSettings(ports=2, seed=2), FakeClock()),
    }
    return PortMap(lines, ["a", "b"])


def test_send_defaults_to_ucs2_with_reports() -> None:
    form = parse_send({"text": "hi", "param": [{"number": "10086"}]}, CFG)
    assert form.text == "hi"
    assert form.recipients == [Recipient("10086", None, None)]
    assert form.wanted_ports is None
    assert form.encoding is Encoding.UCS2
    assert form.report is True


def test_send_fills_templates_per_recipient_and_keeps_user_ids() -> None:
    form = parse_send(
        {
            "text": "Hi #param#",
            "param": [
                {"number": "+8613800138000", "user_id": 5, "text_param": ["Ann"]},
                {"number": "10086"},
            ],
            "port": [1, 2],
            "request_status_report": False,
        },
        CFG,
    )
    assert form.recipients == [
        Recipient("+8613800138000", "5", "Hi Ann"),
        Recipient("10086", None, None),
    ]
    assert form.wanted_ports == [1, 2]
    assert form.report is False


def test_send_gsm7_only_when_every_text_fits_the_alphabet() -> None:
    one = {"number": "10086"}
    gsm = parse_send({"text": "hello", "param": [one], "encoding": "gsm-7bit"}, CFG)
    assert gsm.encoding is Encoding.GSM7
    chinese = parse_send({"text": "你好", "param": [one], "encoding": "gsm-7bit"}, CFG)
    assert chinese.encoding is None  # the send service chooses UCS-2 for it


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"param": [{"number": "1"}]}, InvalidInput),  # no text
        ({"text": "x", "param": []}, InvalidInput),
        ({"text": "x", "param": [{"number": "1"}] * 4}, TooManyNumbers),
        ({"text": "x" * 21, "param": [{"number": "1"}]}, ContentTooLong),
        ({"text": "x", "param": [{"number": "1"}], "encoding": "latin1"}, InvalidInput),
        ({"text": "x", "param": [{"number": "12a"}]}, InvalidInput),
        ({"text": "x", "param": ["10086"]}, InvalidInput),
        ({"text": "#param#", "param": [{"number": "1", "text_param": ["y" * 21]}]}, ContentTooLong),
        ({"text": "x", "param": [{"number": "1", "user_id": -1}]}, InvalidInput),
    ],
)
def test_send_refuses(params: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_send(params, CFG)


def test_query_maps_gateway_ports_to_line_ports_and_times_in_the_account_zone() -> None:
    q = parse_query(
        {
            "number": ["10086", "10010"],
            "port": [1, 2, 9],  # 9 does not exist: dropped
            "time_after": "2026-01-01 08:00:00",
            "time_before": "2026-01-02 08:00:00",
        },
        account=ACCOUNT,
        ports=_ports(),
        cfg=CFG,
    )
    assert q == MessageQuery(
        account_id=7,
        numbers=("10086", "10010"),
        ports=(("a", 1), ("b", 0)),
        after_ms=render.parse_time("2026-01-01 08:00:00", "Asia/Shanghai"),
        before_ms=render.parse_time("2026-01-02 08:00:00", "Asia/Shanghai"),
        limit=50,
    )
    assert parse_query({}, account=ACCOUNT, ports=_ports(), cfg=CFG) == MessageQuery(
        account_id=7, limit=50
    )


def test_query_that_can_match_nothing_is_none() -> None:
    nothing: list[dict[str, Any]] = [{"port": [9]}, {"number": []}, {"port": ""}]
    for params in nothing:
        assert parse_query(params, account=ACCOUNT, ports=_ports(), cfg=CFG) is None


def test_query_times_are_clamped_to_what_an_id_can_carry() -> None:
    q = parse_query({"time_after": "1990-01-01 00:00:00"}, account=ACCOUNT, ports=_ports(), cfg=CFG)
    assert q is not None
    assert q.after_ms == EARLIEST_MS


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"time_after": "2026-01-01"}, InvalidInput),
        ({"number": ["1", "2", "3"]}, TooManyNumbers),
        ({"port": [256]}, InvalidInput),
    ],
)
def test_query_refuses(params: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_query(params, account=ACCOUNT, ports=_ports(), cfg=CFG)
