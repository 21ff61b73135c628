"""The call policy table (domain/call_flow.py), cell by cell, with no line, clock or database.

Each live phase is reached by a fixed script from one call (2 loops of 3 s audio, maxRingingTime
20 s, one recall after 60 s, 1.2 USD per minute at 20+20); every (phase, event) cell of the table
is then fed one event and checked for its commands and the phase after it. Cells that are not
in the table raise FlowError.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simgate.domain.billing import voice_charge
from simgate.domain.call_flow import (
    DTMF_MAX,
    HANGUP_GRACE_MS,
    REDIAL_CODES,
    TABLE,
    Answered,
    CallFlow,
    Command,
    Deadline,
    Dial,
    DialFailed,
    Dialled,
    Dtmf,
    Ended,
    Finish,
    FlowError,
    FlowEvent,
    Hangup,
    Phase,
    Play,
    Played,
    Redial,
    RequestWakeup,
    Ringing,
    Start,
    Unfunded,
    unfunded,
)
from simgate.domain.calls import CallResult, LeasedCall, Pricing, VoiceCharge

T0 = 1_767_225_600_000
RATE = 1_200_000  # USD per minute
PRICING = Pricing(RATE, "20+20", "USD", None)
CALL = LeasedCall(
    id=7,
    account_id=1,
    callee="8613800000001",
    display_num="100",
    audio_id=1,
    loop_count=2,
    max_duration_s=None,
    max_ringing_s=20,
    recall_count=1,
    recall_interval_s=60,
    recalls_done=0,
    pricing=PRICING,
    line=None,
)
AUDIO_MS = 3000
MAX_CALL_S = 600
RING_END = T0 + 20_000  # maxRingingTime
ANSWER = T0 + 3000
PLAYED_OUT = ANSWER + 2 * AUDIO_MS  # both loops played

# Scripts that lead a fresh flow into each phase: (event, now_ms) in order.
Script = list[tuple[FlowEvent, int]]
SCRIPTS: dict[Phase, Script] = {
    Phase.NEW: [],
    Phase.DIALLING: [(Start("v"), T0)],
    Phase.RINGING: [(Start("v"), T0), (Dialled(), T0)],
    Phase.TALKING: [
        (Start("v"), T0),
        (Dialled(), T0),
        (Ringing(T0 + 1000), T0 + 1000),
        (Answered(ANSWER), ANSWER),
    ],
    Phase.CANCELLING: [
        (Start("v"), T0),
        (Dialled(), T0),
        (Ringing(T0 + 1000), T0 + 1000),
        (Deadline(), RING_END + 50),  # a late wake-up: the call still ends at the limit
    ],
    Phase.HANGING_UP: [
        (Start("v"), T0),
        (Dialled(), T0),
        (Ringing(T0 + 1000), T0 + 1000),
        (Answered(ANSWER), ANSWER),
        (Played(PLAYED_OUT + 500), PLAYED_OUT + 500),  # a slow playback: billed to the audio
    ],
    Phase.DONE: [(Start("v"), T0), (Dialled(), T0), (Ended(T0 + 2000, 486), T0 + 2000)],
}


def flow_in(phase: Phase, call: LeasedCall = CALL) -> CallFlow:
    flow = CallFlow(call, audio_ms=AUDIO_MS, max_call_s=MAX_CALL_S)
    for event, now in SCRIPTS[phase]:
        flow.handle(event, now_ms=now)
    assert flow.phase is phase
    return flow


def result(**fields: object) -> CallResult:
    base = CallResult(
        call_id=CALL.id,
        line="v",
        call_ms=T0,
        ringing_ms=T0 + 1000,
        answer_ms=None,
        hangup_ms=T0,
        sip_code=0,
        reason="",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def charge(r: CallResult) -> VoiceCharge:
    return voice_charge(
        answered=r.answered,
        duration_s=r.duration_s,
        rate_micros=RATE,
        bill_period="20+20",
        currency="USD",
        quote_exchange_micros=None,
    )


def finish(**fields: object) -> Finish:
    r = result(**fields)
    return Finish(r, charge(r))


def talked(hangup_ms: int, **fields: object) -> Finish:
    """An answered call's ending: always 200 "success", with the keys pressed."""
    return finish(answer_ms=ANSWER, hangup_ms=hangup_ms, sip_code=200, reason="success", **fields)


# (phase, event, now_ms) → (commands, phase after). One row per cell of TABLE.
Cell = tuple[Phase, FlowEvent, int, list[Command], Phase]
CELLS: list[Cell] = [
    # Placing the call.
    (Phase.NEW, Start("v"), T0, [Dial("8613800000001", "100", 0)], Phase.DIALLING),
    (
        Phase.NEW,
        Unfunded(),
        T0,
        [finish(line="", ringing_ms=None, sip_code=402, reason="insufficient balance")],
        Phase.DONE,
    ),
    (Phase.DIALLING, Dialled(), T0 + 5, [RequestWakeup(RING_END)], Phase.RINGING),
    (
        Phase.DIALLING,
        DialFailed("RuntimeError('boom')"),
        T0 + 5,
        # 503 is "unreachable": redialled while recalls are left.
        [
            Redial(
                result(
                    ringing_ms=None, hangup_ms=T0 + 5, sip_code=503, reason="RuntimeError('boom')"
                ),
                at_ms=T0 + 5 + 60_000,
            )
        ],
        Phase.DONE,
    ),
    # RINGING: not answered yet, maxRingingTime armed.
    (Phase.RINGING, Ringing(T0 + 1000), T0 + 1000, [], Phase.RINGING),
    (Phase.RINGING, Dtmf(T0 + 1000, "1"), T0 + 1000, [], Phase.RINGING),
    (
        Phase.RINGING,
        Answered(T0 + 2000),
        T0 + 2000,
        [Play(2), RequestWakeup(T0 + 2000 + MAX_CALL_S * 1000)],
        Phase.TALKING,
    ),
    (
        Phase.RINGING,
        Played(T0 + 4000),  # a line that plays without an answer: ended there
        T0 + 4000,
        [Hangup(), RequestWakeup(T0 + 4000 + HANGUP_GRACE_MS)],
        Phase.HANGING_UP,
    ),
    (
        Phase.RINGING,
        Ended(T0 + 4000, 486, "busy here"),
        T0 + 4001,
        [
            Redial(
                result(ringing_ms=None, hangup_ms=T0 + 4000, sip_code=486, reason="busy here"),
                at_ms=T0 + 4001 + 60_000,
            )
        ],
        Phase.DONE,
    ),
    (
        Phase.RINGING,
        Deadline(),
        RING_END + 50,
        [Hangup(), RequestWakeup(RING_END + HANGUP_GRACE_MS)],  # the call ends at the limit
        Phase.CANCELLING,
    ),
    # TALKING: answered, the audio plays, maxDuration (here the 600 s cap) armed.
    (Phase.TALKING, Ringing(T0 + 4000), T0 + 4000, [], Phase.TALKING),
    (Phase.TALKING, Dtmf(T0 + 4000, "5"), T0 + 4000, [], Phase.TALKING),
    (
        Phase.TALKING,
        Answered(T0 + 5000),  # a repeated 200 OK: plays again, the cap from the new answer
        T0 + 5000,
        [Play(2), RequestWakeup(T0 + 5000 + MAX_CALL_S * 1000)],
        Phase.TALKING,
    ),
    (
        Phase.TALKING,
        Played(PLAYED_OUT + 500),
        PLAYED_OUT + 500,
        [Hangup(), RequestWakeup(PLAYED_OUT + HANGUP_GRACE_MS)],  # billed to the audio's end
        Phase.HANGING_UP,
    ),
    (
        Phase.TALKING,
        Ended(T0 + 5400, 200),
        T0 + 5400,
        [talked(T0 + 5400)],  # 2.4 s → 2 s, 20 s charged
        Phase.DONE,
    ),
    (
        Phase.TALKING,
        Deadline(),
        ANSWER + MAX_CALL_S * 1000 + 10,
        [Hangup(), RequestWakeup(ANSWER + MAX_CALL_S * 1000 + HANGUP_GRACE_MS)],
        Phase.HANGING_UP,
    ),
    # CANCELLING: we gave up ringing; waiting for the line to confirm.
    (Phase.CANCELLING, Ringing(RING_END + 100), RING_END + 100, [], Phase.CANCELLING),
    (Phase.CANCELLING, Dtmf(RING_END + 100, "1"), RING_END + 100, [], Phase.CANCELLING),
    (Phase.CANCELLING, Played(RING_END + 100), RING_END + 100, [], Phase.CANCELLING),
    (
        Phase.CANCELLING,
        Answered(RING_END + 100),  # picked up as we cancelled: it plays, our hang-up stands
        RING_END + 100,
        [Play(2)],
        Phase.HANGING_UP,
    ),
    (
        Phase.CANCELLING,
        Ended(RING_END + 300, 503, "whatever the line says"),
        RING_END + 300,
        [
            Redial(
                result(hangup_ms=RING_END, sip_code=487, reason="no answer"),
                at_ms=RING_END + 300 + 60_000,
            )
        ],
        Phase.DONE,
    ),
    (
        Phase.CANCELLING,
        Deadline(),  # the line never confirmed the CANCEL
        RING_END + HANGUP_GRACE_MS,
        [
            Redial(
                result(hangup_ms=RING_END, sip_code=487, reason="no answer"),
                at_ms=RING_END + HANGUP_GRACE_MS + 60_000,
            )
        ],
        Phase.DONE,
    ),
    # HANGING_UP: we hung up after the audio (or at maxDuration); waiting for the BYE's answer.
    (Phase.HANGING_UP, Ringing(PLAYED_OUT + 600), PLAYED_OUT + 600, [], Phase.HANGING_UP),
    (Phase.HANGING_UP, Dtmf(PLAYED_OUT + 600, "9"), PLAYED_OUT + 600, [], Phase.HANGING_UP),
    (Phase.HANGING_UP, Played(PLAYED_OUT + 600), PLAYED_OUT + 600, [], Phase.HANGING_UP),
    (Phase.HANGING_UP, Answered(ANSWER), ANSWER + 7000, [Play(2)], Phase.HANGING_UP),
    (
        Phase.HANGING_UP,
        Ended(PLAYED_OUT + 800, 200),
        PLAYED_OUT + 800,
        [talked(PLAYED_OUT)],  # ends at our hang-up, not at the line's confirmation
        Phase.DONE,
    ),
    (
        Phase.HANGING_UP,
        Deadline(),
        PLAYED_OUT + HANGUP_GRACE_MS,
        [talked(PLAYED_OUT)],
        Phase.DONE,
    ),
]


def test_the_cells_cover_the_table_exactly() -> None:
    cells = [(phase, type(event)) for phase, event, *_ in CELLS]
    assert len(cells) == len(set(cells))
    assert set(cells) == set(TABLE)


@pytest.mark.parametrize(
    ("phase", "event", "now", "commands", "after"),
    CELLS,
    ids=[f"{c[0].name}-{type(c[1]).__name__}" for c in CELLS],
)
def test_cell(
    phase: Phase, event: FlowEvent, now: int, commands: list[Command], after: Phase
) -> None:
    flow = flow_in(phase)
    assert flow.handle(event, now_ms=now) == commands
    assert flow.phase is after
    if after is Phase.DONE:
        assert flow.ending == commands[-1]


EVENTS: list[FlowEvent] = [
    Start("v"),
    Unfunded(),
    Dialled(),
    DialFailed("x"),
    Ringing(T0),
    Answered(T0),
    Dtmf(T0, "1"),
    Played(T0),
    Ended(T0, 200),
    Deadline(),
]
MISSING = [
    (phase, event) for phase in Phase for event in EVENTS if (phase, type(event)) not in TABLE
]


@pytest.mark.parametrize(
    ("phase", "event"), MISSING, ids=[f"{p.name}-{type(e).__name__}" for p, e in MISSING]
)
def test_every_other_cell_is_an_error(phase: Phase, event: FlowEvent) -> None:
    flow = flow_in(phase)
    with pytest.raises(FlowError):
        flow.handle(event, now_ms=T0 + 100_000)
    assert flow.phase is phase


# ---- rules across cells --------------------------------------------------------------------
def test_first_ringing_is_kept_and_an_answer_without_ringing_counts_as_ringing() -> None:
    flow = flow_in(Phase.TALKING)
    flow.handle(Ringing(T0 + 4000), now_ms=T0 + 4000)
    assert flow.ringing_ms == T0 + 1000
    quick = flow_in(Phase.RINGING)
    quick.handle(Answered(T0 + 2000), now_ms=T0 + 2000)
    assert quick.ringing_ms == T0 + 2000


def test_max_duration_of_the_request_replaces_the_talk_cap() -> None:
    flow = flow_in(Phase.RINGING, replace(CALL, max_duration_s=5))
    assert flow.handle(Answered(ANSWER), now_ms=ANSWER) == [Play(2), RequestWakeup(ANSWER + 5000)]
    flow.handle(Deadline(), now_ms=ANSWER + 5200)
    (ending,) = flow.handle(Ended(ANSWER + 5400, 200), now_ms=ANSWER + 5400)
    assert isinstance(ending, Finish)
    assert ending.result.hangup_ms == ANSWER + 5000  # a call simgate ends ends at its limit
    assert ending.result.duration_s == 5


def test_feedback_is_every_key_pressed_up_to_the_cap_and_only_when_answered() -> None:
    flow = flow_in(Phase.TALKING)
    for i in range(DTMF_MAX + 3):
        flow.handle(Dtmf(ANSWER + i, "1" if i == 0 else "2"), now_ms=ANSWER + i)
    (ending,) = flow.handle(Ended(ANSWER + 4000, 200), now_ms=ANSWER + 4000)
    assert isinstance(ending, Finish)
    assert ending.result.dtmf == "1" + "2" * (DTMF_MAX - 1)
    unanswered = flow_in(Phase.RINGING, replace(CALL, recall_count=0))
    unanswered.handle(Dtmf(T0 + 10, "5"), now_ms=T0 + 10)
    (ending,) = unanswered.handle(Ended(T0 + 20, 480), now_ms=T0 + 20)
    assert isinstance(ending, Finish)
    assert (ending.result.dtmf, ending.charge.cost_micros) == ("", 0)


def test_keys_pressed_before_the_answer_count_once_it_is_answered() -> None:
    flow = flow_in(Phase.RINGING)
    flow.handle(Dtmf(T0 + 10, "7"), now_ms=T0 + 10)
    flow.handle(Answered(T0 + 20), now_ms=T0 + 20)
    (ending,) = flow.handle(Ended(T0 + 2020, 200), now_ms=T0 + 2020)
    assert isinstance(ending, Finish)
    assert ending.result.dtmf == "7"


def test_no_redial_when_recalls_are_spent_or_the_code_is_not_a_no_answer() -> None:
    spent = flow_in(Phase.RINGING, replace(CALL, recalls_done=1))
    (ending,) = spent.handle(Ended(T0 + 10, 486), now_ms=T0 + 10)
    assert isinstance(ending, Finish)
    assert (ending.result.sip_code, ending.charge.cost_micros) == (486, 0)
    for code in (404, 484, 500):
        assert code not in REDIAL_CODES
        (ending,) = flow_in(Phase.RINGING).handle(Ended(T0 + 10, code), now_ms=T0 + 10)
        assert isinstance(ending, Finish)


def test_redial_carries_the_attempt_number_into_the_dial() -> None:
    flow = CallFlow(replace(CALL, recalls_done=2, recall_count=3), audio_ms=0, max_call_s=60)
    assert flow.handle(Start("v2"), now_ms=T0) == [Dial("8613800000001", "100", 2)]


def test_an_ended_report_before_the_answer_time_never_bills_negative_time() -> None:
    """A line whose events stopped without ENDED is fed Ended(0, 503): the hang-up is then
    taken as the answer itself (0 s), never before it."""
    flow = flow_in(Phase.TALKING)
    (ending,) = flow.handle(Ended(0, 503), now_ms=ANSWER + 100)
    assert isinstance(ending, Finish)
    assert (ending.result.sip_code, ending.result.hangup_ms) == (200, ANSWER)
    assert ending.result.duration_s == 0


def test_unfunded_checks_calls_in_lease_order_per_account() -> None:
    # 20+20 at 1.2 USD/min: the first step costs 0.4 USD.
    calls = [replace(CALL, id=i, account_id=1 if i < 4 else 2) for i in range(6)]
    assert unfunded(calls, {1: 900_000, 2: 400_000}) == {2, 3, 5}
    assert unfunded(calls, {}) == set(range(6))
    free = replace(CALL, pricing=Pricing(0, "20+20", "USD", None))
    assert unfunded([free], {1: 0}) == {CALL.id}  # at least one micro, even for a free rate
    assert unfunded([free], {1: 1}) == set()


# ---- any order of allowed events -------------------------------------------------------------
@given(st.data())
def test_any_allowed_sequence_ends_consistently(data: st.DataObject) -> None:
    call = replace(
        CALL,
        loop_count=data.draw(st.integers(1, 3)),
        recall_count=data.draw(st.integers(0, 1)),
        max_duration_s=data.draw(st.one_of(st.none(), st.integers(1, 30))),
    )
    flow = CallFlow(call, audio_ms=data.draw(st.sampled_from([0, 1000, 3000])), max_call_s=60)
    now = T0
    hangups = 0
    commands = flow.handle(Start("v"), now_ms=now)
    while flow.phase is not Phase.DONE:
        now += data.draw(st.integers(0, 30_000))
        # Endings first: Hypothesis shrinks towards the first option, so short calls.
        options: list[FlowEvent] = [
            e
            for e in (
                Ended(now, data.draw(st.sampled_from([200, 408, 480, 486, 487, 503, 404]))),
                Deadline(),
                DialFailed("x"),
                Dialled(),
                Answered(now),
                Played(now),
                Ringing(now),
                Dtmf(now, "4"),
            )
            if (flow.phase, type(e)) in TABLE
        ]
        event = data.draw(st.sampled_from(options))
        if isinstance(event, Deadline) and flow.wake_ms is not None:
            now = max(now, flow.wake_ms)  # a timer never fires early
        commands = flow.handle(event, now_ms=now)
        hangups += sum(isinstance(c, Hangup) for c in commands)
    assert hangups <= 1
    (ending,) = commands
    assert ending == flow.ending
    assert isinstance(ending, Finish | Redial)
    r = ending.result
    assert r.call_ms <= r.hangup_ms
    if r.answer_ms is not None:
        assert (r.sip_code, r.reason) == (200, "success")
        assert r.hangup_ms >= r.answer_ms
        if flow.hung_up_ms is not None:
            assert r.hangup_ms <= max(flow.hung_up_ms, r.answer_ms)
    else:
        assert r.dtmf == ""
    if isinstance(ending, Redial):
        assert not r.answered
        assert r.sip_code in REDIAL_CODES
        assert call.recalls_done < call.recall_count
        assert ending.at_ms == now + call.recall_interval_s * 1000
    elif not r.answered:
        assert ending.charge.cost_micros == 0
    with pytest.raises(FlowError):
        flow.handle(Deadline(), now_ms=now)
