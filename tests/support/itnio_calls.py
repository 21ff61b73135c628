"""A stored voice call as the seed's sample record shows it, and the voice app it belongs to
(spec §1.14-§1.16, seed 003): shared by the rendering and the push format tests."""

from __future__ import annotations

import dataclasses

from simgate.api.dialects.itnio import render
from simgate.domain.accounts import App, AppKind
from simgate.domain.calls import CallKind, CallRecord, CallState
from tests.support.itnio_voice import SEED_RECORD


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
