"""Field parsing of the voice sends and queries (spec §1.11-§1.15): pure, no database."""

from __future__ import annotations

from typing import Any

import pytest

from simgate.api.dialects.itnio.envelope import ItnioError, code_for
from simgate.api.dialects.itnio.voice import (
    VOICE_ERROR_CODES,
    SendCodeFields,
    SendGroupFields,
    double_field,
    page_body,
    paging,
    voice_id_of,
)
from simgate.domain.calls import CallOptions
from simgate.errors import (
    AlreadyExists,
    InvalidInput,
    InvalidMedia,
    InvalidNumber,
    NoPricing,
    NotFound,
    OutOfRange,
    TooManyNumbers,
)
from simgate.services.voice import TtsRequest

# spec §1.11: the documented request fields (the Chinese page's sample values).
SEND_CODE = {
    "appId": "abcd1234",
    "callee": "91856321412",
    "displayNum": "1008122211",
    "language": "EN",
    "text": "Your code is 1 2 3 4",
    "speakingRate": 1.25,
    "ssmlGender": 1,
    "accent": "91",
    "loopCount": 3,
    "calledInfo": "order 77",
    "recallCount": 2,
    "recallInterval": 10,
    "maxDuration": 60,
    "maxRingingTime": 30,
}
# spec §1.12.
SEND_GROUP = {
    "appId": "abcd1234",
    "callee": "932111111111,932111111112",
    "displayNum": "1008122211",
    "fileId": "12022022570cc2484c59d4f8b9745d34226285b1e.mp3",
    "maxDuration": 60,
    "maxRingingTime": 30,
    "loopCount": 2,
    "calledInfo": "x",
}


def _code(fn: Any, data: dict[str, Any]) -> str:
    with pytest.raises(ItnioError) as err:
        fn(data)
    return str(err.value.code)


def test_send_code_maps_every_field() -> None:
    got = SendCodeFields.parse(SEND_CODE)
    assert got.callee == "91856321412"
    assert got.tts == TtsRequest("EN", "Your code is 1 2 3 4", 1.25, 1)
    assert got.options == CallOptions(
        display_num="1008122211",
        loop_count=3,
        called_info="order 77",
        recall_count=2,
        recall_interval_s=600,
        max_duration_s=60,
        max_ringing_s=30,
    )


def test_send_code_defaults() -> None:
    got = SendCodeFields.parse({"callee": "91856321412", "language": "EN", "text": "hi"})
    assert got.tts == TtsRequest("EN", "hi", 1.0, 2)  # female by default (§1.11)
    assert got.options == CallOptions()  # loop 1, no redial, 5 min, ring 60 s
    assert got.options.recall_interval_s == 300


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("callee", None),
        ("callee", ""),
        ("callee", 91856321412),
        ("language", None),
        ("language", "E" * 17),
        ("text", None),
        ("text", ""),
        ("text", "   "),
        ("text", "x" * 1001),
        ("text", "a\x00b"),
        ("speakingRate", 0.2),
        ("speakingRate", 4.5),
        ("speakingRate", "fast"),
        ("speakingRate", True),
        ("speakingRate", [1]),
        ("ssmlGender", 3),
        ("ssmlGender", 0),
        ("accent", {"a": 1}),
        ("accent", "x" * 40),
        ("loopCount", 0),
        ("loopCount", 10),
        ("loopCount", 1.5),
        ("calledInfo", "x" * 1001),
        ("calledInfo", 5),
        ("recallCount", 10),
        ("recallCount", -1),
        ("recallInterval", 0),
        ("recallInterval", 1000),
        ("maxDuration", 0),
        ("maxDuration", 121),
        ("maxRingingTime", 19),
        ("maxRingingTime", 121),
        ("displayNum", "1" * 40),
    ],
)
def test_send_code_bad_fields_are_minus_22(field: str, value: Any) -> None:
    assert _code(SendCodeFields.parse, {**SEND_CODE, field: value}) == "-22"


def test_send_code_accepts_the_documented_limits() -> None:
    edge = {
        **SEND_CODE,
        "text": "x" * 1000,
        "speakingRate": 4,
        "loopCount": 9,
        "recallCount": 9,
        "recallInterval": 999,
        "maxDuration": 120,
        "maxRingingTime": 120,
        "calledInfo": "y" * 1000,
        "accent": 91,
    }
    got = SendCodeFields.parse(edge)
    assert (got.tts.speaking_rate, got.options.loop_count, got.options.recall_interval_s) == (
        4.0,
        9,
        999 * 60,
    )
    low = SendCodeFields.parse({**SEND_CODE, "speakingRate": "0.25", "maxRingingTime": 20})
    assert (low.tts.speaking_rate, low.options.max_ringing_s) == (0.25, 20)


def test_send_group_maps_every_field() -> None:
    got = SendGroupFields.parse(SEND_GROUP)
    assert got.callees == ["932111111111", "932111111112"]
    assert got.file_id == SEND_GROUP["fileId"]
    assert got.options == CallOptions(
        display_num="1008122211",
        loop_count=2,
        called_info="x",
        max_duration_s=60,
        max_ringing_s=30,
    )


def test_send_group_display_num_is_optional_and_commas_are_forgiven() -> None:
    data = {k: v for k, v in SEND_GROUP.items() if k != "displayNum"}
    got = SendGroupFields.parse({**data, "callee": " 932111111111, ,932111111112,"})
    assert got.callees == ["932111111111", "932111111112"]
    assert got.options.display_num == ""


def test_send_group_callee_count() -> None:
    many = ",".join(f"93211{n:07d}" for n in range(200))
    assert len(SendGroupFields.parse({**SEND_GROUP, "callee": many}).callees) == 200
    assert _code(SendGroupFields.parse, {**SEND_GROUP, "callee": many + ",932111111111"}) == "-22"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("callee", ""),
        ("callee", ",,"),
        ("callee", ["932111111111"]),
        ("fileId", None),
        ("fileId", "f" * 65),
        ("loopCount", 4),
        ("maxRingingTime", 10),
        ("maxDuration", "abc"),
    ],
)
def test_send_group_bad_fields_are_minus_22(field: str, value: Any) -> None:
    assert _code(SendGroupFields.parse, {**SEND_GROUP, field: value}) == "-22"


def test_double_field() -> None:
    assert double_field({}, "r", default=1.0, lo=0.25, hi=4) == 1.0
    assert double_field({"r": "2.5"}, "r", default=1.0, lo=0.25, hi=4) == 2.5
    assert _code(lambda d: double_field(d, "r", default=1.0, lo=0.25, hi=4), {"r": "nan"}) == "-22"
    long_text = {"r": "1" * 40}
    assert _code(lambda d: double_field(d, "r", default=1.0, lo=0.25, hi=4), long_text) == "-22"


def test_paging() -> None:
    assert paging({}) == (1, 25)
    assert paging({"current": None, "size": None}) == (1, 25)  # "cannot be passed empty"
    assert paging({"current": 3, "size": 100}) == (3, 100)
    for bad in ({"current": 0}, {"size": 0}, {"size": 101}, {"current": "x"}):
        assert _code(paging, bad) == "-22"


def test_page_body() -> None:
    assert page_body(0, 25, 1, []) == {
        "total": 0,
        "size": 25,
        "current": 1,
        "pages": 0,
        "records": [],
    }
    page = page_body(51, 25, 3, [1], search_count=True)
    assert list(page) == ["total", "size", "current", "pages", "searchCount", "records"]
    assert (page["pages"], page["searchCount"]) == (3, True)


@pytest.mark.parametrize("text", ["", " ", "abc", "12345678901234567890", "-1", "１２３", "1.5"])
def test_voice_id_of_refuses_non_ids(text: str) -> None:
    assert _code(voice_id_of, text) == "-22"  # type: ignore[arg-type]


def test_voice_id_of() -> None:
    assert voice_id_of("2203031113381000002") == 2203031113381000002


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (NoPricing("x"), -26),
        (NotFound("x"), -22),
        (InvalidNumber("x"), -22),
        (TooManyNumbers("x"), -22),
        (AlreadyExists("x"), -20),
        (InvalidMedia("x"), -21),
        (OutOfRange("x"), -25),
        (InvalidInput("x"), -22),
    ],
)
def test_voice_error_codes(exc: Exception, code: int) -> None:
    assert code_for(exc, VOICE_ERROR_CODES) == code


def test_sms_codes_are_unchanged() -> None:
    assert [code_for(e) for e in (NoPricing("x"), NotFound("x"), InvalidNumber("x"))] == [
        -19,
        -14,
        -9,
    ]
    assert [code_for(e) for e in (AlreadyExists("x"), InvalidMedia("x"), OutOfRange("x"))] == [
        -20,
        -21,
        -25,
    ]
