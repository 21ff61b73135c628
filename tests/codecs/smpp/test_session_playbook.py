"""Table-driven playbooks: every (role, state, incoming command id) pair, every
(role, state, timer/transport event) pair and every (role, state, outgoing request)
pair, with the expected new state and the bytes/events emitted.

Cell codes for incoming PDUs (the PDU arrives with sequence_number 4242):
  app      -> RequestReceived(pdu) for the application, nothing sent
  app>BND  -> RequestReceived + StateChanged(-> BINDING)
  auto     -> the session answers by itself with the ESME_ROK response
  auto>CLS -> auto answer, then StateChanged(-> CLOSED) (+ RequestAborted)
  BNDSTS / CMDID / ALYBND -> the command's response with ESME_RINVBNDSTS /
              ESME_RINVCMDID / ESME_RALYBND, plus a ProtocolError event
  drop     -> ProtocolError event only (nothing can be answered)
  -        -> ignored entirely (session closed)
"""

from __future__ import annotations

import pytest

from simgate.codecs.smpp import (
    PDU_TYPES,
    CommandId,
    CommandStatus,
    Pdu,
    ProtocolError,
    RequestAborted,
    RequestReceived,
    ResponseTimeout,
    Role,
    SmppSessionError,
    State,
    StateChanged,
    encode,
    response_type,
)
from simgate.codecs.smpp.pdus import EnquireLink

from .session_helpers import sent, session_in

STATES = [State(s) for s in ("open", "binding", "bound_tx", "bound_rx", "bound_trx")] + [
    State.UNBINDING,
    State.CLOSED,
]

#                     OPEN    BINDING BOUND_TX BOUND_RX BOUND_TRX UNBINDING CLOSED
ESME_INCOMING = """
bind_transmitter      CMDID   CMDID   CMDID    CMDID    CMDID     CMDID     -
bind_receiver         CMDID   CMDID   CMDID    CMDID    CMDID     CMDID     -
bind_transceiver      CMDID   CMDID   CMDID    CMDID    CMDID     CMDID     -
outbind               app     drop    drop     drop     drop      drop      -
unbind                BNDSTS  BNDSTS  auto>CLS auto>CLS auto>CLS  auto>CLS  -
enquire_link          auto    auto    auto     auto     auto      auto      -
submit_sm             CMDID   CMDID   CMDID    CMDID    CMDID     CMDID     -
query_sm              CMDID   CMDID   CMDID    CMDID    CMDID     CMDID     -
cancel_sm             CMDID   CMDID   CMDID    CMDID    CMDID     CMDID     -
replace_sm            CMDID   CMDID   CMDID    CMDID    CMDID     CMDID     -
deliver_sm            BNDSTS  BNDSTS  BNDSTS   app      app       BNDSTS    -
data_sm               BNDSTS  BNDSTS  BNDSTS   app      app       BNDSTS    -
alert_notification    drop    drop    drop     app      app       drop      -
"""

SMSC_INCOMING = """
bind_transmitter      app>BND ALYBND  ALYBND   ALYBND   ALYBND    BNDSTS    -
bind_receiver         app>BND ALYBND  ALYBND   ALYBND   ALYBND    BNDSTS    -
bind_transceiver      app>BND ALYBND  ALYBND   ALYBND   ALYBND    BNDSTS    -
outbind               drop    drop    drop     drop     drop      drop      -
unbind                BNDSTS  BNDSTS  auto>CLS auto>CLS auto>CLS  auto>CLS  -
enquire_link          auto    auto    auto     auto     auto      auto      -
submit_sm             BNDSTS  BNDSTS  app      BNDSTS   app       BNDSTS    -
query_sm              BNDSTS  BNDSTS  app      BNDSTS   app       BNDSTS    -
cancel_sm             BNDSTS  BNDSTS  app      BNDSTS   app       BNDSTS    -
replace_sm            BNDSTS  BNDSTS  app      BNDSTS   app       BNDSTS    -
deliver_sm            CMDID   CMDID   CMDID    CMDID    CMDID     CMDID     -
data_sm               BNDSTS  BNDSTS  app      BNDSTS   app       BNDSTS    -
alert_notification    drop    drop    drop     drop     drop      drop      -
"""

# Every response is unsolicited here (nothing outstanding under seq 4242).
RESPONSES = "\n".join(
    f"{c.name.lower():22}" + "drop    " * 6 + "-"
    for c in CommandId
    if c.is_response and c in PDU_TYPES
)


def parse_grid(grid: str) -> list[tuple[CommandId, State, str]]:
    cells = []
    for line in grid.strip().splitlines():
        name, *codes = line.split()
        assert len(codes) == len(STATES), line
        cells += [(CommandId[name.upper()], s, c) for s, c in zip(STATES, codes, strict=True)]
    return cells


CASES = [
    (role, command, state, code)
    for role, grid in ((Role.ESME, ESME_INCOMING), (Role.SMSC, SMSC_INCOMING))
    for command, state, code in parse_grid(grid + RESPONSES)
]

REJECT = {
    "BNDSTS": CommandStatus.ESME_RINVBNDSTS,
    "CMDID": CommandStatus.ESME_RINVCMDID,
    "ALYBND": CommandStatus.ESME_RALYBND,
}


def test_grids_cover_every_decodable_command() -> None:
    for role in Role:
        covered = {(c, s) for r, c, s, _ in CASES if r is role}
        assert covered == {(CommandId(c), s) for c in PDU_TYPES for s in STATES}


@pytest.mark.parametrize(
    ("role", "command", "state", "code"),
    CASES,
    ids=[f"{r.name}-{s.name}-{c.name}" for r, c, s, _ in CASES],
)
def test_incoming_playbook(role: Role, command: CommandId, state: State, code: str) -> None:
    session = session_in(role, state)
    pdu: Pdu = PDU_TYPES[command](sequence_number=4242)
    events = session.receive_data(encode(pdu), now=1.0)
    out = sent(session.data_to_send())
    answer = response_type(command)

    if code == "-":
        assert (events, out, session.state) == ([], [], state)
    elif code in ("app", "app>BND"):
        assert out == []
        assert events[0] == RequestReceived(pdu)
        if code == "app":
            assert (len(events), session.state) == (1, state)
        else:
            assert events[1:] == [StateChanged(state, State.BINDING)]
            assert session.state is State.BINDING
            assert 4242 in session.awaiting_our_response
    elif code in ("auto", "auto>CLS"):
        assert answer is not None
        assert out == [answer(sequence_number=4242)]
        if code == "auto":
            assert (events, session.state) == ([], state)
        else:
            assert events[0] == StateChanged(state, State.CLOSED)
            assert all(isinstance(e, RequestAborted) for e in events[1:])
            assert len(events) == 1 + (state is State.UNBINDING)  # our pending unbind
            assert session.state is State.CLOSED
    elif code in REJECT:
        assert answer is not None
        assert out == [answer(sequence_number=4242, command_status=REJECT[code])]
        assert len(events) == 1
        assert isinstance(events[0], ProtocolError)
        assert (events[0].status, events[0].sequence_number) == (REJECT[code], 4242)
        assert not events[0].fatal
        assert session.state is state
    elif code == "drop":
        assert out == []
        assert len(events) == 1
        assert isinstance(events[0], ProtocolError)
        assert (events[0].status, events[0].fatal) == (None, False)
        assert session.state is state
    else:
        raise AssertionError(f"unknown cell code {code}")


# --- timers and transport -----------------------------------------------------------
# response_timeout=10, enquire_link_interval=30, everything set up at t=0.
# (events after tick(11), state after tick(11), enquire_link sent by tick(31)?)
TIMER_PLAYBOOK = {
    State.OPEN: ([], State.OPEN, False),
    State.BINDING: (
        [ResponseTimeout, StateChanged],
        State.OPEN,
        False,
    ),
    State.BOUND_TX: ([], State.BOUND_TX, True),
    State.BOUND_RX: ([], State.BOUND_RX, True),
    State.BOUND_TRX: ([], State.BOUND_TRX, True),
    State.UNBINDING: ([ResponseTimeout, StateChanged], State.CLOSED, False),
    State.CLOSED: ([], State.CLOSED, False),
}


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name)
@pytest.mark.parametrize("state", STATES, ids=lambda s: s.name)
def test_timer_playbook(role: Role, state: State) -> None:
    session = session_in(role, state)
    expected_events, expected_state, keepalive = TIMER_PLAYBOOK[state]
    if role is Role.SMSC and state is State.BINDING:
        # The SMSC has no request of its own outstanding while the ESME binds.
        expected_events, expected_state = [], State.BINDING
    assert session.tick(9.9) == []
    events = session.tick(11.0)
    assert [type(e) for e in events] == expected_events
    assert session.state is expected_state
    assert session.data_to_send() == b""
    session.tick(31.0)
    out = sent(session.data_to_send())
    assert out == ([EnquireLink(sequence_number=out[0].sequence_number)] if keepalive else [])
    if keepalive:
        assert session.next_deadline() == 41.0  # the keepalive's response deadline


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name)
@pytest.mark.parametrize("state", STATES, ids=lambda s: s.name)
def test_connection_lost_playbook(role: Role, state: State) -> None:
    session = session_in(role, state)
    events = session.connection_lost(5.0)
    assert session.state is State.CLOSED
    if state is State.CLOSED:
        assert events == []
        return
    assert events[0] == StateChanged(state, State.CLOSED)
    # Requests still waiting for an answer are aborted: our bind or unbind.
    ours_pending = (role is Role.ESME and state is State.BINDING) or state is State.UNBINDING
    assert [type(e) for e in events[1:]] == ([RequestAborted] if ours_pending else [])
    assert session.next_deadline() is None
    assert session.receive_data(encode(EnquireLink(sequence_number=1))) == []
    assert session.data_to_send() == b""


# --- local sends --------------------------------------------------------------------
#   ok:STATE -> returns bytes, new state; err -> SmppSessionError, state unchanged.
#                     OPEN    BINDING BOUND_TX BOUND_RX BOUND_TRX UNBINDING CLOSED
ESME_OUTGOING = """
bind_transmitter      BINDING err     err      err      err       err       err
bind_receiver         BINDING err     err      err      err       err       err
bind_transceiver      BINDING err     err      err      err       err       err
outbind               err     err     err      err      err       err       err
unbind                err     err     UNBINDING UNBINDING UNBINDING err     err
enquire_link          OPEN    BINDING BOUND_TX BOUND_RX BOUND_TRX UNBINDING err
submit_sm             err     err     BOUND_TX err      BOUND_TRX err       err
query_sm              err     err     BOUND_TX err      BOUND_TRX err       err
cancel_sm             err     err     BOUND_TX err      BOUND_TRX err       err
replace_sm            err     err     BOUND_TX err      BOUND_TRX err       err
data_sm               err     err     BOUND_TX err      BOUND_TRX err       err
deliver_sm            err     err     err      err      err       err       err
alert_notification    err     err     err      err      err       err       err
"""

SMSC_OUTGOING = """
bind_transmitter      err     err     err      err      err       err       err
bind_receiver         err     err     err      err      err       err       err
bind_transceiver      err     err     err      err      err       err       err
outbind               OPEN    err     err      err      err       err       err
unbind                err     err     UNBINDING UNBINDING UNBINDING err     err
enquire_link          OPEN    BINDING BOUND_TX BOUND_RX BOUND_TRX UNBINDING err
submit_sm             err     err     err      err      err       err       err
query_sm              err     err     err      err      err       err       err
cancel_sm             err     err     err      err      err       err       err
replace_sm            err     err     err      err      err       err       err
data_sm               err     err     err      BOUND_RX BOUND_TRX err       err
deliver_sm            err     err     err      BOUND_RX BOUND_TRX err       err
alert_notification    err     err     err      BOUND_RX BOUND_TRX err       err
"""

SEND_CASES = [
    (role, command, state, code)
    for role, grid in ((Role.ESME, ESME_OUTGOING), (Role.SMSC, SMSC_OUTGOING))
    for command, state, code in parse_grid(grid)
]


@pytest.mark.parametrize(
    ("role", "command", "state", "code"),
    SEND_CASES,
    ids=[f"{r.name}-{s.name}-{c.name}" for r, c, s, _ in SEND_CASES],
)
def test_outgoing_playbook(role: Role, command: CommandId, state: State, code: str) -> None:
    session = session_in(role, state)
    pdu = PDU_TYPES[command](sequence_number=999)
    if code == "err":
        with pytest.raises(SmppSessionError):
            session.send(pdu, now=1.0)
        assert session.state is state
        return
    before = session.outstanding
    data = session.send(pdu, now=1.0)
    (wire_pdu,) = sent(data)
    assert type(wire_pdu) is type(pdu)
    assert session.state is State[code]
    assert wire_pdu.sequence_number != 999  # the session numbers requests
    # outbind and alert_notification have no response: nothing to wait for.
    tracked = response_type(command) is not None
    assert session.outstanding == before + tracked
