"""Pure voice renderings against the vendor's samples (spec §1.13-§1.16, seed 003, §7)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from simgate.api.dialects.itnio import render
from simgate.api.dialects.itnio.voice_render import (
    file_item,
    push_item,
    record_item,
    ring_duration_s,
)
from simgate.domain.accounts import App, AppKind
from simgate.domain.calls import CallKind, CallRecord, CallState, VoiceFile
from tests.api.itnio.test_send import assert_same_shape

# seed 003 (recordGroupQuery), the sample record of its response.
SEED_RECORD: dict[str, Any] = {
    "voiceId": "2203031113381000002",
    "callee": "91856321412",
    "displayNum": "1008122211",
    "code": "Afghanistan(Kandahar)",
    "submitTime": "2022-01-18T14:42:40+08:00",
    "callTime": "2022-01-18T14:45:42+08:00",
    "ringingTime": "2022-01-18T14:42:47+08:00",
    "answerTime": "2022-01-18T14:42:50+08:00",
    "hangupTime": "2022-01-18T14:42:55+08:00",
    "callDuration": 5,
    "chargedDuration": 5,
    "terminationCode": "200",
    "terminationReason": "success",
    "cost": "2",
    "billPeriod": "20+20",
    "rate": "1.2",
    "baseCost": "1",
    "voiceFileId": "12022022570cc2484c59d4f8b9745d34226285b1e.mp3",
    "feedbackValue": "1",
    "calledInfo": "calledInfo",
    "settleRate": "1.2793",
    "quoteExchange": "0.938",
    "currency": "EUR",
    "settlePay": "1.2793",
}

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


def _ms(text: str) -> int:
    ms = render.parse_iso(text)
    assert ms is not None
    return ms


SEED_CALL = CallRecord(
    id=2203031113381000002,
    account_id=1,
    app_id=7,
    kind=CallKind.GROUP,
    state=CallState.DONE,
    callee="91856321412",
    display_num="1008122211",
    area="Afghanistan(Kandahar)",
    file_id="12022022570cc2484c59d4f8b9745d34226285b1e.mp3",
    loop_count=1,
    called_info="calledInfo",
    recall_count=0,
    recalls_done=0,
    line="sim",
    submit_ms=_ms(SEED_RECORD["submitTime"]),
    call_ms=_ms(SEED_RECORD["callTime"]),
    ringing_ms=_ms(SEED_RECORD["ringingTime"]),
    answer_ms=_ms(SEED_RECORD["answerTime"]),
    hangup_ms=_ms(SEED_RECORD["hangupTime"]),
    call_duration_s=5,
    charged_duration_s=5,
    sip_code=200,
    reason="success",
    dtmf="12",
    bill_period="20+20",
    rate_micros=1_200_000,
    base_cost_micros=1_000_000,
    cost_micros=2_000_000,
    currency="EUR",
    quote_exchange_micros=938_000,
    settle_rate_micros=1_279_300,
    settle_pay_micros=1_279_300,
    updated_ms=_ms(SEED_RECORD["hangupTime"]),
)
USD_CALL = dataclasses.replace(
    SEED_CALL,
    currency="USD",
    quote_exchange_micros=None,
    settle_rate_micros=None,
    settle_pay_micros=None,
)
VOICE_APP = App(7, "vApp0001", 1, AppKind.VOICE, "voice", {"voice_url": "https://c.example/v"})


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
