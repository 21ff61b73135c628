"""Pure voice renderings against the vendor's samples (spec §1.13-§1.16, seed 003, §7)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from simgate.api.dialects.itnio.voice_render import (
    file_item,
    push_item,
    record_item,
    ring_duration_s,
)
from simgate.domain.calls import CallKind, CallState, VoiceFile
from tests.support.itnio_calls import SEED_CALL, USD_CALL
from tests.support.itnio_voice import SEED_RECORD
from tests.support.shapes import assert_same_shape

# spec §1.16: the documented push fields and their types (sample start plus the table).
PUSH_SAMPLE: dict[str, Any] = {
    "voiceId": "22121121451211349002",
    "type": 1,
    "callee": "63123456788",
    "displayNum": "6311012125",
    "submitTime": 1670939112097,
    "callTime": 1670939568000,
    "ringingTime": 1670939570000,
    "answerTime": 1670939575000,
    "hangupTime": 1670939588000,
    "chargedDuration": 20,
    "callDuration": 13,
    "billPeriod": "20+20",
    "code": "India(Karnataka)",
    "voiceFileId": "12022022570cc2484c59d4f8b9745d34226285b1e.mp3",
    "rate": "0.1",
    "baseCost": "0.033333",
    "cost": "0.033333",
    "terminationCode": "200",
    "terminationReason": "success",
    "sipCode": "200",
    "feedbackValue": "-1",
    "calledInfo": "",
    "ringDuration": 5,
    "outRecallCount": 0,
}

TZ = "Asia/Shanghai"


def test_record_matches_the_seed_sample_exactly() -> None:
    got = record_item(SEED_CALL, TZ)
    assert got.pop("sipCode") == "200"  # §7: the SIP code again, beside terminationCode
    assert got == SEED_RECORD
    assert list(got) == list(SEED_RECORD)  # the seed's field order, too


def test_record_of_a_usd_account_has_no_quote_fields() -> None:
    got = record_item(USD_CALL, TZ)
    assert not {"settleRate", "quoteExchange", "currency", "settlePay"} & set(got)
    assert_same_shape(got, {k: v for k, v in SEED_RECORD.items() if k in got})


def test_record_times_follow_the_account_zone() -> None:
    got = record_item(SEED_CALL, "UTC")
    assert got["submitTime"] == "2022-01-18T06:42:40+00:00"


def test_unanswered_call_has_null_times_not_empty_strings() -> None:
    busy = dataclasses.replace(
        USD_CALL,
        answer_ms=None,
        ringing_ms=None,
        call_duration_s=0,
        charged_duration_s=0,
        sip_code=486,
        reason="busy",
        dtmf="",
        cost_micros=0,
        base_cost_micros=0,
    )
    got = record_item(busy, TZ)
    assert (got["ringingTime"], got["answerTime"]) == (None, None)
    assert isinstance(got["hangupTime"], str)
    assert (got["terminationCode"], got["sipCode"], got["terminationReason"]) == (
        "486",
        "486",
        "busy",
    )
    assert (got["feedbackValue"], got["cost"], got["chargedDuration"]) == ("-1", "0", 0)


def test_call_still_queued_has_no_termination_code() -> None:
    queued = dataclasses.replace(
        SEED_CALL,
        state=CallState.QUEUED,
        call_ms=None,
        ringing_ms=None,
        answer_ms=None,
        hangup_ms=None,
        call_duration_s=0,
        charged_duration_s=0,
        sip_code=None,
        reason=None,
        dtmf="",
        cost_micros=0,
        base_cost_micros=0,
        settle_rate_micros=None,
        settle_pay_micros=None,
    )
    got = record_item(queued, TZ)
    assert (got["terminationCode"], got["terminationReason"], got["sipCode"]) == ("", "", "")
    assert [got[k] for k in ("callTime", "ringingTime", "answerTime", "hangupTime")] == [None] * 4
    # The quote-currency rate is known from the accept snapshot; nothing was paid yet.
    assert (got["settleRate"], got["quoteExchange"], got["settlePay"]) == ("1.1256", "0.938", "0")


def test_tts_record_has_no_voice_file() -> None:
    tts = dataclasses.replace(SEED_CALL, kind=CallKind.TTS, file_id="")
    assert record_item(tts, TZ)["voiceFileId"] == ""
    assert push_item(tts)["type"] == 2


def test_push_item_types_match_the_documented_fields() -> None:
    got = push_item(dataclasses.replace(USD_CALL, dtmf=""))
    assert_same_shape(got, PUSH_SAMPLE)
    assert set(got) == set(PUSH_SAMPLE)
    assert got["submitTime"] == SEED_CALL.submit_ms  # epoch ms, not ISO text
    assert (got["type"], got["ringDuration"], got["outRecallCount"]) == (1, 3, 0)


def test_push_item_of_a_non_usd_account_has_the_quote_fields() -> None:
    got = push_item(SEED_CALL)
    assert {k: got[k] for k in ("settleRate", "quoteExchange", "currency", "settlePay")} == {
        "settleRate": "1.2793",
        "quoteExchange": "0.938",
        "currency": "EUR",
        "settlePay": "1.2793",
    }
    assert got["feedbackValue"] == "1"  # the first key pressed


def test_push_item_times_are_null_when_absent() -> None:
    lost = dataclasses.replace(
        USD_CALL, ringing_ms=None, answer_ms=None, sip_code=408, recalls_done=2
    )
    got = push_item(lost)
    assert (got["ringingTime"], got["answerTime"]) == (None, None)
    assert (got["ringDuration"], got["outRecallCount"], got["terminationCode"]) == (0, 2, "408")


@pytest.mark.parametrize(
    ("ringing", "answer", "hangup", "expected"),
    [
        (None, None, 9_000, 0),  # never rang
        (1_000, 4_000, 9_000, 3),  # rang until answered
        (1_000, None, 31_000, 30),  # rang until the hang-up, unanswered
        (1_000, 1_400, 9_000, 0),  # to the nearest second, like callDuration
        (1_000, 1_500, 9_000, 1),  # half up
        (1_000, None, None, 0),
    ],
)
def test_ring_duration(
    ringing: int | None, answer: int | None, hangup: int | None, expected: int
) -> None:
    call = dataclasses.replace(USD_CALL, ringing_ms=ringing, answer_ms=answer, hangup_ms=hangup)
    assert ring_duration_s(call) == expected


def test_file_item() -> None:
    f = VoiceFile(
        1, 1, "1202202254d4c6372d6f341e999c7ecd0683ee464.mp3", "hello.mp3", "mp3", 3, 0, 0, 0
    )
    assert file_item(f) == {
        "fileId": "1202202254d4c6372d6f341e999c7ecd0683ee464.mp3",
        "fileName": "hello.mp3",
    }
