"""The message state machine of spec §7: every (state, event) cell of the transition table."""

from __future__ import annotations

import itertools

import pytest

from simgate.domain.messages import (
    FINAL,
    STATE_TIME_COLUMN,
    TRANSITIONS,
    Event,
    IllegalTransition,
    State,
    is_refund,
    next_state,
    sources_of,
)

S, E = State, Event

# The table as spec §7 and the README describe it, written out independently of the code.
EXPECTED: dict[tuple[State, Event], State] = {
    (S.ACCEPTED, E.QUEUE): S.QUEUED,
    (S.ACCEPTED, E.CANCEL): S.REJECTED,
    (S.QUEUED, E.LEASE): S.SUBMITTING,
    (S.QUEUED, E.EXPIRE): S.EXPIRED,
    (S.QUEUED, E.CANCEL): S.REJECTED,
    (S.SUBMITTING, E.SUBMIT_OK): S.SENT,
    (S.SUBMITTING, E.SUBMIT_RETRY): S.QUEUED,
    (S.SUBMITTING, E.SUBMIT_REJECTED): S.REJECTED,
    (S.SUBMITTING, E.SUBMIT_FAILED): S.FAILED,
    (S.SUBMITTING, E.LEASE_EXPIRED): S.UNKNOWN,
    (S.SUBMITTING, E.RESEND): S.QUEUED,
    (S.SUBMITTING, E.REPORT_DELIVERED): S.DELIVERED,
    (S.SUBMITTING, E.REPORT_FAILED): S.FAILED,
    (S.SENT, E.REPORT_DELIVERED): S.DELIVERED,
    (S.SENT, E.REPORT_FAILED): S.FAILED,
    (S.SENT, E.EXPIRE): S.EXPIRED,
    (S.UNKNOWN, E.REPORT_DELIVERED): S.DELIVERED,
    (S.UNKNOWN, E.REPORT_FAILED): S.FAILED,
    (S.UNKNOWN, E.EXPIRE): S.EXPIRED,
    (S.UNKNOWN, E.RESEND): S.QUEUED,
}

ALL_CELLS = list(itertools.product(State, Event))


@pytest.mark.parametrize(("state", "event"), ALL_CELLS, ids=lambda v: v.name)
def test_every_cell(state: State, event: Event) -> None:
    expected = EXPECTED.get((state, event))
    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            next_state(state, event)
        assert info.value.state is state
        assert info.value.event is event
        assert state.name in str(info.value)
        assert event.value in str(info.value)
    else:
        assert next_state(state, event) is expected


def test_table_has_no_cells_beyond_the_expected_ones() -> None:
    assert TRANSITIONS == EXPECTED


def test_final_states_have_no_way_out() -> None:
    assert {S.DELIVERED, S.FAILED, S.EXPIRED, S.REJECTED} == FINAL
    for state, event in ALL_CELLS:
        if state in FINAL:
            assert (state, event) not in TRANSITIONS


def test_every_state_is_reachable_from_accepted() -> None:
    seen, todo = {S.ACCEPTED}, [S.ACCEPTED]
    while todo:
        s = todo.pop()
        for (src, _), dst in TRANSITIONS.items():
            if src is s and dst not in seen:
                seen.add(dst)
                todo.append(dst)
    assert seen == set(State)


@pytest.mark.parametrize("event", list(Event), ids=lambda e: e.name)
def test_sources_of_lists_exactly_the_allowed_states(event: Event) -> None:
    expected = tuple(sorted(s for (s, e) in EXPECTED if e is event))
    assert sources_of(event) == expected
    assert all(isinstance(s, State) for s in sources_of(event))


def test_sources_of_examples() -> None:
    assert sources_of(E.EXPIRE) == (S.QUEUED, S.SENT, S.UNKNOWN)
    assert sources_of(E.LEASE) == (S.QUEUED,)
    assert sources_of(E.RESEND) == (S.SUBMITTING, S.UNKNOWN)


# Refund rule (README "Billing"): refunded only when the message ends before leaving simgate.
REFUNDED = {
    (S.QUEUED, E.EXPIRE),
    (S.QUEUED, E.CANCEL),
    (S.ACCEPTED, E.CANCEL),
    (S.SUBMITTING, E.SUBMIT_REJECTED),
}


@pytest.mark.parametrize(("state", "event"), ALL_CELLS, ids=lambda v: v.name)
def test_refund_rule(state: State, event: Event) -> None:
    assert is_refund(state, event) is ((state, event) in REFUNDED)


def test_refunds_only_on_allowed_transitions_into_final_states() -> None:
    for state, event in REFUNDED:
        assert next_state(state, event) in FINAL


def test_every_state_has_a_time_column_and_values_are_stable() -> None:
    assert set(STATE_TIME_COLUMN) == set(State)
    assert len(set(STATE_TIME_COLUMN.values())) == len(State)
    # The integer values are part of the database format.
    assert [int(s) for s in State] == list(range(9))
    assert [s.name for s in State] == [
        "ACCEPTED", "QUEUED", "SUBMITTING", "SENT", "DELIVERED",
        "FAILED", "EXPIRED", "REJECTED", "UNKNOWN",
    ]  # fmt: skip
