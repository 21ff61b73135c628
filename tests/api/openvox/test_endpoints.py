"""Request readers of the OpenVox handlers without a database (spec §3.3, §7)."""

from __future__ import annotations

from typing import Any

import pytest

from simgate.api.dialects.openvox import render
from simgate.api.dialects.openvox.endpoints import (
    MAX_PAGE,
    number_variants,
    read_dest_nums,
    read_msg,
    read_page,
    read_spans,
    read_window,
)
from simgate.api.dialects.openvox.envelope import BadRequest, Fields
from simgate.errors import ContentEmpty, ContentTooLong, TooManyNumbers
from simgate.services.openvox import Window


def test_spans_in_every_spelling_one_based_without_duplicates() -> None:
    assert read_spans(None, port_count=4) == []
    assert read_spans("", port_count=4) == []
    assert read_spans([], port_count=4) == []
    assert read_spans("2, 1,2,", port_count=4) == [2, 1]
    assert read_spans([3, "4"], port_count=4) == [3, 4]
    assert read_spans(1, port_count=4) == [1]
    for bad in (0, 5, "x", [True]):
        with pytest.raises(BadRequest):
            read_spans(bad, port_count=4)


def test_dest_nums_are_a_comma_list_with_a_limit() -> None:
    assert read_dest_nums(Fields({"dest_num": " 10086, ,+44 7700 900123 "}), limit=2) == [
        "10086",
        "+44 7700 900123",
    ]
    with pytest.raises(BadRequest):
        read_dest_nums(Fields({}), limit=2)
    with pytest.raises(BadRequest):
        read_dest_nums(Fields({"dest_num": " , "}), limit=2)
    with pytest.raises(TooManyNumbers):
        read_dest_nums(Fields({"dest_num": "1,2,3"}), limit=2)


@pytest.mark.parametrize(
    ("value", "error"),
    [(None, BadRequest), (5, BadRequest), ("", ContentEmpty), ("a\x00b", BadRequest)],
)
def test_msg_refuses(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        read_msg(Fields({"msg": value}), max_chars=5)


def test_msg_length_is_counted_in_characters() -> None:
    assert read_msg(Fields({"msg": "你好你好你"}), max_chars=5) == "你好你好你"
    with pytest.raises(ContentTooLong):
        read_msg(Fields({"msg": "123456"}), max_chars=5)


def test_page_is_one_based_and_bounded() -> None:
    assert read_page(Fields({})) == 1
    assert read_page(Fields({"current_page": "3"})) == 3
    for bad in (0, MAX_PAGE + 1, "two"):
        with pytest.raises(BadRequest):
            read_page(Fields({"current_page": bad}))


def test_window_reads_times_in_the_account_zone_and_dates_as_whole_days() -> None:
    tz = "Europe/Berlin"
    start = render.parse_time("2026-01-01 09:30:00", tz)
    last_second = render.parse_time("2026-01-02 23:59:59", tz)
    assert start is not None
    assert last_second is not None
    w = read_window(
        Fields(
            {
                "phone_number_filter": " 13800138000 ",
                "start_datetime_filter": "2026-01-01 09:30:00",
                "end_datetime_filter": "2026-01-02",
            }
        ),
        tz,
    )
    assert w == Window(
        numbers=number_variants("13800138000"),
        from_ms=start,
        to_ms=last_second + 999,
    )
    assert read_window(Fields({}), tz) == Window()


@pytest.mark.parametrize(
    "fields",
    [
        {"start_datetime_filter": "yesterday"},
        {"end_datetime_filter": "2026-13-45 99:00:00"},
        {"start_datetime_filter": "2026-01-02", "end_datetime_filter": "2026-01-01 00:00:00"},
        {"phone_number_filter": 13800138000},
    ],
)
def test_window_refuses(fields: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        read_window(Fields(fields), "UTC")


def test_number_variants_cover_the_spellings_a_number_is_stored_under() -> None:
    assert number_variants("") == ()
    assert number_variants("+44 7700 900123") == (
        "+44 7700 900123",
        "44 7700 900123",
        "447700900123",
        "+447700900123",
    )
    assert number_variants("10086") == ("10086", "+10086")
