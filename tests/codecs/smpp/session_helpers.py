"""Put SmppSessions into a given state by playing real PDUs through them."""

from __future__ import annotations

from simgate.codecs.smpp import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    Pdu,
    PduFramer,
    RequestReceived,
    Role,
    SessionConfig,
    SmppSession,
    State,
    Unbind,
    decode,
    encode,
    make_response,
)
from simgate.codecs.smpp.pdus import _Bind

BIND_FOR: dict[State, type[_Bind]] = {
    State.BOUND_TX: BindTransmitter,
    State.BOUND_RX: BindReceiver,
    State.BOUND_TRX: BindTransceiver,
}

CONFIG = {"response_timeout": 10.0, "enquire_link_interval": 30.0}


def sent(data: bytes) -> list[Pdu]:
    framer = PduFramer()
    pdus = [decode(frame) for frame in framer.feed(data)]
    assert framer.buffered == 0
    return pdus


def session_in(role: Role, state: State, now: float = 0.0, **config: object) -> SmppSession:
    """A session of ``role`` driven into ``state`` at time ``now``; outbox drained."""
    session = SmppSession(SessionConfig(role=role, **{**CONFIG, **config}), now=now)  # type: ignore[arg-type]
    if state is State.OPEN:
        return session
    bind_cls = BIND_FOR.get(state, BindTransmitter if state is State.BINDING else BindTransceiver)
    if role is Role.ESME:
        request = decode(session.send(bind_cls(system_id="esme", password="pw"), now))
        if state is not State.BINDING:
            session.receive_data(encode(make_response(request, system_id="smsc")), now)
    else:
        events = session.receive_data(encode(bind_cls(sequence_number=1, system_id="esme")), now)
        assert isinstance(events[0], RequestReceived)
        if state is not State.BINDING:
            session.send(make_response(events[0].pdu, system_id="smsc"), now)
    if state is State.UNBINDING:
        session.send(Unbind(), now)
    if state is State.CLOSED:
        session.connection_lost(now)
    session.data_to_send()
    assert session.state is state
    return session
