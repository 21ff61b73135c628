"""Session scenarios: ESME <-> SMSC conversations, window, sequence numbers,
response matching, timeouts, keepalives, garbage handling."""

from __future__ import annotations

import pytest

from simgate.codecs.smpp import (
    AlertNotification,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    CommandStatus,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Outbind,
    ProtocolError,
    RequestAborted,
    RequestReceived,
    ResponseReceived,
    ResponseTimeout,
    Role,
    SessionConfig,
    SmppSession,
    SmppSessionError,
    State,
    StateChanged,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    WindowFullError,
    encode,
    make_response,
)
from simgate.codecs.smpp.window import MAX_SEQUENCE, Window

from .session_helpers import sent, session_in


def test_esme_and_smsc_sessions_talk_to_each_other() -> None:
    esme = SmppSession(SessionConfig(role=Role.ESME))
    smsc = SmppSession(SessionConfig(role=Role.SMSC))

    (bind_event, binding) = smsc.receive_data(
        esme.send(BindTransceiver(system_id="acme", password="pw"), now=0), now=0
    )
    assert isinstance(bind_event, RequestReceived)
    assert bind_event.pdu == BindTransceiver(sequence_number=1, system_id="acme", password="pw")
    assert binding == StateChanged(State.OPEN, State.BINDING)
    assert esme.state is State.BINDING

    bind_resp = smsc.send(make_response(bind_event.pdu, system_id="smsc"), now=0)
    assert smsc.state is State.BOUND_TRX
    (bound, changed) = esme.receive_data(bind_resp, now=0.5)
    assert isinstance(bound, ResponseReceived)
    assert bound.ok
    assert bound.elapsed == 0.5
    assert changed == StateChanged(State.BINDING, State.BOUND_TRX)

    submit = SubmitSm(destination_addr="447700900123", short_message=b"hi", registered_delivery=1)
    (incoming,) = smsc.receive_data(esme.send(submit, now=1), now=1)
    assert isinstance(incoming, RequestReceived)
    assert incoming.pdu.sequence_number == 2
    (answered,) = esme.receive_data(
        smsc.send(make_response(incoming.pdu, message_id="1d305b4c"), now=1), now=1.2
    )
    assert isinstance(answered, ResponseReceived)
    assert answered.request == SubmitSm(
        sequence_number=2,
        destination_addr="447700900123",
        short_message=b"hi",
        registered_delivery=1,
    )
    assert answered.response == SubmitSmResp(sequence_number=2, message_id="1d305b4c")

    receipt = DeliverSm(esm_class=4, short_message=b"id:1d305b4c stat:DELIVRD")
    (delivered,) = esme.receive_data(smsc.send(receipt, now=2), now=2)
    assert isinstance(delivered, RequestReceived)
    assert smsc.outstanding == 1
    smsc.receive_data(esme.send(make_response(delivered.pdu), now=2), now=2)
    assert smsc.outstanding == 0

    unbind = esme.send(Unbind(), now=3)
    assert esme.state.name == "UNBINDING"  # (mypy narrowed .state earlier)
    (closed_smsc,) = smsc.receive_data(unbind, now=3)
    assert closed_smsc == StateChanged(State.BOUND_TRX, State.CLOSED)
    events = esme.receive_data(smsc.data_to_send(), now=3)
    assert isinstance(events[0], ResponseReceived)
    assert events[0].response == UnbindResp(sequence_number=3)  # bind 1, submit 2
    assert events[1] == StateChanged(State.UNBINDING, State.CLOSED)
    assert esme.closed
    assert smsc.closed


def test_deliver_sm_on_transmitter_bind_gets_rinvbndsts() -> None:
    esme = session_in(Role.ESME, State.BOUND_TX)
    (error,) = esme.receive_data(encode(DeliverSm(sequence_number=77)), now=1)
    assert isinstance(error, ProtocolError)
    assert sent(esme.data_to_send()) == [
        DeliverSmResp(sequence_number=77, command_status=CommandStatus.ESME_RINVBNDSTS)
    ]


def test_submit_before_bind_is_a_local_error() -> None:
    esme = SmppSession()
    with pytest.raises(SmppSessionError, match="SUBMIT_SM not allowed in state OPEN"):
        esme.send(SubmitSm())
    with pytest.raises(SmppSessionError, match="does not send DELIVER_SM"):
        session_in(Role.ESME, State.BOUND_TRX).send(DeliverSm())


def test_window_and_sequence_numbers() -> None:
    esme = session_in(Role.ESME, State.BOUND_TX, window_size=3)
    numbers = [
        sent(esme.send(SubmitSm(sequence_number=0), now=1))[0].sequence_number for _ in range(3)
    ]
    assert numbers == [2, 3, 4]  # 1 was the bind
    assert esme.outstanding == 3
    assert not esme.can_send()
    with pytest.raises(WindowFullError):
        esme.send(SubmitSm())
    # Responses may come back in any order.
    events = esme.receive_data(
        encode(SubmitSmResp(sequence_number=4, message_id="b"))
        + encode(SubmitSmResp(sequence_number=2, message_id="a")),
        now=2,
    )
    assert [e.request.sequence_number for e in events if isinstance(e, ResponseReceived)] == [4, 2]
    assert esme.outstanding == 1
    assert esme.can_send()


def test_keepalives_do_not_use_the_window() -> None:
    esme = session_in(Role.ESME, State.BOUND_TX, window_size=1)
    esme.send(SubmitSm(), now=0)
    assert not esme.can_send()
    esme.tick(5)  # submit still pending (timeout 10); not idle enough
    esme.receive_data(encode(EnquireLink(sequence_number=50)), now=5)
    esme.data_to_send()
    esme.receive_data(encode(SubmitSmResp(sequence_number=2)), now=6)
    esme.send(SubmitSm(), now=7)
    esme.receive_data(encode(SubmitSmResp(sequence_number=3)), now=8)
    esme.send(SubmitSm(), now=8)
    esme.receive_data(encode(SubmitSmResp(sequence_number=4)), now=9)
    esme.tick(40)  # idle since 9: keepalive goes out
    (keepalive,) = sent(esme.data_to_send())
    assert isinstance(keepalive, EnquireLink)
    assert esme.outstanding == 0
    assert esme.can_send()
    # Its response is consumed silently.
    assert (
        esme.receive_data(encode(EnquireLinkResp(sequence_number=keepalive.sequence_number)), 41)
        == []
    )
    assert esme.next_deadline() == 71.0


def test_window_sequence_numbers_wrap_and_skip_outstanding() -> None:
    window = Window(size=5)
    window._next = MAX_SEQUENCE  # white-box: jump to the end of the range
    window.add(SubmitSm(sequence_number=MAX_SEQUENCE), now=0, timeout=1)
    assert window.next_sequence() == 1
    window.add(SubmitSm(sequence_number=1), now=0, timeout=1)
    window._next = MAX_SEQUENCE  # both MAX_SEQUENCE and 1 still pending
    assert window.next_sequence() == 2
    with pytest.raises(ValueError, match="not the next one"):
        window.add(SubmitSm(sequence_number=7), now=0, timeout=1)
    assert window.skip_sequence() == 2
    assert window.outstanding == 2
    assert [p.request.sequence_number for p in window.pop_expired(1)] == [MAX_SEQUENCE, 1]
    assert window.earliest_deadline() is None


def test_fire_and_forget_requests_are_numbered_but_not_tracked() -> None:
    smsc = session_in(Role.SMSC, State.BOUND_RX)
    (alert,) = sent(smsc.send(AlertNotification(sequence_number=0, source_addr="4477"), now=1))
    (deliver,) = sent(smsc.send(DeliverSm(), now=1))
    assert deliver.sequence_number == alert.sequence_number + 1
    assert smsc.outstanding == 1


def test_mismatched_and_unexpected_responses() -> None:
    esme = session_in(Role.ESME, State.BOUND_TRX)
    esme.send(SubmitSm(), now=1)  # seq 2
    (mismatch,) = esme.receive_data(encode(DeliverSmResp(sequence_number=2)), now=2)
    assert isinstance(mismatch, ProtocolError)
    assert "does not answer SUBMIT_SM" in mismatch.reason
    assert esme.outstanding == 1  # still waiting for the real answer
    (nacked,) = esme.receive_data(
        encode(GenericNack(sequence_number=2, command_status=CommandStatus.ESME_RTHROTTLED)), 3
    )
    assert isinstance(nacked, ResponseReceived)
    assert not nacked.ok
    assert nacked.response.status is CommandStatus.ESME_RTHROTTLED
    (unexpected,) = esme.receive_data(encode(SubmitSmResp(sequence_number=2)), now=4)
    assert isinstance(unexpected, ProtocolError)
    assert esme.data_to_send() == b""  # responses are never answered


@pytest.mark.parametrize(
    "answer",
    [
        BindTransceiverResp(sequence_number=1, command_status=CommandStatus.ESME_RINVPASWD),
        GenericNack(sequence_number=1, command_status=CommandStatus.ESME_RINVCMDID),
    ],
    ids=["bind_resp", "generic_nack"],
)
def test_bind_rejected(answer: BindTransceiverResp | GenericNack) -> None:
    esme = SmppSession()
    esme.send(BindTransceiver(system_id="x", password="wrong"), now=0)
    response, changed = esme.receive_data(encode(answer), now=1)
    assert isinstance(response, ResponseReceived)
    assert not response.ok
    assert changed == StateChanged(State.BINDING, State.OPEN)
    esme.send(BindTransceiver(system_id="x", password="right"), now=2)  # may retry
    assert esme.state is State.BINDING


def test_smsc_rejecting_a_bind_returns_to_open() -> None:
    smsc = SmppSession(SessionConfig(role=Role.SMSC))
    (request, _) = smsc.receive_data(encode(BindTransmitter(sequence_number=9)), now=0)
    assert isinstance(request, RequestReceived)
    smsc.send(make_response(request.pdu, CommandStatus.ESME_RBINDFAIL))
    assert smsc.state is State.OPEN


def test_responses_must_answer_a_received_request() -> None:
    smsc = session_in(Role.SMSC, State.BOUND_TRX)
    with pytest.raises(SmppSessionError, match="answers no request"):
        smsc.send(SubmitSmResp(sequence_number=5, message_id="x"))
    (request,) = smsc.receive_data(encode(SubmitSm(sequence_number=5)), now=1)
    assert isinstance(request, RequestReceived)
    with pytest.raises(SmppSessionError):
        smsc.send(DeliverSmResp(sequence_number=5))
    assert smsc.awaiting_our_response == {5}
    smsc.send(make_response(request.pdu, message_id="x"))
    assert smsc.awaiting_our_response == frozenset()
    with pytest.raises(SmppSessionError):  # only once
        smsc.send(make_response(request.pdu, message_id="x"))
    # generic_nack may always be sent.
    assert smsc.send(GenericNack(sequence_number=123, command_status=8))


def test_response_timeout_releases_the_window() -> None:
    esme = session_in(Role.ESME, State.BOUND_TX, now=95, window_size=1)
    assert esme.next_deadline() == 125.0  # keepalive
    esme.send(SubmitSm(), now=100)
    assert esme.next_deadline() == 110.0
    assert esme.tick(109.9) == []
    (timeout,) = esme.tick(110)
    assert isinstance(timeout, ResponseTimeout)
    assert timeout.request.sequence_number == 2
    assert esme.can_send()
    # A late answer is now unexpected.
    (late,) = esme.receive_data(encode(SubmitSmResp(sequence_number=2)), now=111)
    assert isinstance(late, ProtocolError)


def test_enquire_link_timeout_kills_the_link() -> None:
    esme = session_in(Role.ESME, State.BOUND_TRX)
    esme.tick(30)
    (keepalive,) = sent(esme.data_to_send())
    assert isinstance(keepalive, EnquireLink)
    esme.send(SubmitSm(), now=35)
    assert esme.next_deadline() == 40.0
    events = esme.tick(40)
    assert [type(e) for e in events] == [ResponseTimeout, StateChanged, RequestAborted]
    assert events[1] == StateChanged(State.BOUND_TRX, State.CLOSED)
    assert isinstance(events[2], RequestAborted)
    assert isinstance(events[2].request, SubmitSm)
    with pytest.raises(SmppSessionError, match="closed"):
        esme.send(SubmitSm())


def test_traffic_postpones_the_keepalive() -> None:
    esme = session_in(Role.ESME, State.BOUND_RX)
    assert esme.next_deadline() == 30.0
    esme.receive_data(encode(DeliverSm(sequence_number=3)), now=20)
    assert esme.next_deadline() == 50.0
    esme.tick(49)
    assert esme.data_to_send() == b""
    disabled = session_in(Role.ESME, State.BOUND_RX, enquire_link_interval=None)
    assert disabled.next_deadline() is None


def test_undecodable_request_gets_generic_nack_with_its_sequence() -> None:
    esme = session_in(Role.ESME, State.BOUND_TRX)
    garbage = bytes.fromhex("00000014000000050000000000000033") + b"abc\x01"  # deliver_sm
    (error,) = esme.receive_data(garbage, now=1)
    assert isinstance(error, ProtocolError)
    assert error.sequence_number == 0x33
    assert sent(esme.data_to_send()) == [
        GenericNack(sequence_number=0x33, command_status=CommandStatus.ESME_RINVCMDLEN)
    ]
    unknown = bytes.fromhex("00000010000000990000000000000034")
    esme.receive_data(unknown, now=1)
    assert sent(esme.data_to_send()) == [
        GenericNack(sequence_number=0x34, command_status=CommandStatus.ESME_RINVCMDID)
    ]
    assert esme.state is State.BOUND_TRX


def test_undecodable_response_aborts_the_request() -> None:
    esme = session_in(Role.ESME, State.BOUND_TX)
    esme.send(SubmitSm(), now=1)  # seq 2
    bad = bytes.fromhex("00000013800000040000000000000002") + b"abc"  # no NUL
    error, aborted = esme.receive_data(bad, now=2)
    assert isinstance(error, ProtocolError)
    assert isinstance(aborted, RequestAborted)
    assert aborted.request.sequence_number == 2
    assert esme.data_to_send() == b""  # responses are never nacked


def test_broken_stream_closes_the_session() -> None:
    esme = session_in(Role.ESME, State.BOUND_TRX)
    esme.send(SubmitSm(), now=1)
    good = encode(EnquireLink(sequence_number=7))
    bad_header = bytes.fromhex("00000008000000040000000000000009")
    events = esme.receive_data(good + bad_header, now=2)
    assert [type(e) for e in events] == [ProtocolError, StateChanged, RequestAborted]
    assert isinstance(events[0], ProtocolError)
    assert events[0].fatal
    assert sent(esme.data_to_send()) == [
        EnquireLinkResp(sequence_number=7),
        GenericNack(sequence_number=9, command_status=CommandStatus.ESME_RINVCMDLEN),
    ]
    assert esme.closed


def test_outbind_then_bind_receiver() -> None:
    esme = SmppSession()
    (outbind,) = esme.receive_data(encode(Outbind(sequence_number=1, system_id="smsc")), now=0)
    assert isinstance(outbind, RequestReceived)
    assert esme.awaiting_our_response == frozenset()  # outbind has no response
    esme.send(BindTransmitter(), now=0)
    assert esme.state is State.BINDING


def test_crossing_unbinds() -> None:
    esme = session_in(Role.ESME, State.BOUND_TRX)
    esme.send(Unbind(), now=1)
    events = esme.receive_data(encode(Unbind(sequence_number=40)), now=1)
    assert events[0] == StateChanged(State.UNBINDING, State.CLOSED)
    assert isinstance(events[1], RequestAborted)
    assert sent(esme.data_to_send()) == [UnbindResp(sequence_number=40)]


def test_several_pdus_in_one_read_update_state_in_order() -> None:
    esme = SmppSession()
    esme.send(BindTransceiver(), now=0)
    data = encode(BindTransceiverResp(sequence_number=1)) + encode(DeliverSm(sequence_number=5))
    events = esme.receive_data(data[:7], now=1) + esme.receive_data(data[7:], now=1)
    assert [type(e) for e in events] == [ResponseReceived, StateChanged, RequestReceived]


def test_config_validation() -> None:
    for bad in ({"window_size": 0}, {"response_timeout": 0}, {"enquire_link_interval": -1}):
        with pytest.raises(ValueError, match="must be"):
            SessionConfig(**bad)  # type: ignore[arg-type]
