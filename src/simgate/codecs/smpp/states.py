"""Bind states, the transition table, and which requests each side may send when.

Both ends of an SMPP connection share one bind state, so the same tables serve the
ESME and the SMSC role. ``TRANSITIONS[(state, trigger)] -> state``: a pair that is
not in the table does not change the state.
"""

from __future__ import annotations

import enum
from typing import Final

from simgate.codecs.smpp.constants import CommandId, CommandStatus


class Role(enum.Enum):
    ESME = "esme"  # client: binds to an SMSC
    SMSC = "smsc"  # server: accepts binds

    @property
    def peer(self) -> Role:
        return Role.SMSC if self is Role.ESME else Role.ESME


class State(enum.Enum):
    OPEN = "open"  # connected, not bound
    BINDING = "binding"  # bind request sent (ESME) / received (SMSC), no response yet
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBINDING = "unbinding"  # we sent unbind, awaiting unbind_resp
    CLOSED = "closed"  # unbound or connection lost: close the socket


class Trigger(enum.Enum):
    BIND_TX_STARTED = enum.auto()  # bind_transmitter sent (ESME) / received (SMSC)
    BIND_RX_STARTED = enum.auto()
    BIND_TRX_STARTED = enum.auto()
    BIND_TX_OK = enum.auto()  # positive bind_transmitter_resp received / sent
    BIND_RX_OK = enum.auto()
    BIND_TRX_OK = enum.auto()
    BIND_FAILED = enum.auto()  # negative bind resp or generic_nack, or bind timeout
    UNBIND_SENT = enum.auto()
    UNBIND_RECEIVED = enum.auto()  # answered automatically with unbind_resp
    UNBIND_DONE = enum.auto()  # unbind_resp received, or unbind timed out
    LINK_LOST = enum.auto()  # connection lost, unusable stream, enquire_link timeout


BOUND: Final = frozenset({State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX})
NOT_CLOSED: Final = frozenset(State) - {State.CLOSED}
CAN_TRANSMIT: Final = frozenset({State.BOUND_TX, State.BOUND_TRX})
CAN_RECEIVE: Final = frozenset({State.BOUND_RX, State.BOUND_TRX})

BIND_STARTED: Final = {
    CommandId.BIND_TRANSMITTER: Trigger.BIND_TX_STARTED,
    CommandId.BIND_RECEIVER: Trigger.BIND_RX_STARTED,
    CommandId.BIND_TRANSCEIVER: Trigger.BIND_TRX_STARTED,
}
BIND_OK: Final = {
    CommandId.BIND_TRANSMITTER: Trigger.BIND_TX_OK,
    CommandId.BIND_RECEIVER: Trigger.BIND_RX_OK,
    CommandId.BIND_TRANSCEIVER: Trigger.BIND_TRX_OK,
}

TRANSITIONS: Final[dict[tuple[State, Trigger], State]] = {
    (State.OPEN, Trigger.BIND_TX_STARTED): State.BINDING,
    (State.OPEN, Trigger.BIND_RX_STARTED): State.BINDING,
    (State.OPEN, Trigger.BIND_TRX_STARTED): State.BINDING,
    (State.BINDING, Trigger.BIND_TX_OK): State.BOUND_TX,
    (State.BINDING, Trigger.BIND_RX_OK): State.BOUND_RX,
    (State.BINDING, Trigger.BIND_TRX_OK): State.BOUND_TRX,
    (State.BINDING, Trigger.BIND_FAILED): State.OPEN,
    **{(s, Trigger.UNBIND_SENT): State.UNBINDING for s in BOUND},
    **{(s, Trigger.UNBIND_RECEIVED): State.CLOSED for s in BOUND},
    (State.UNBINDING, Trigger.UNBIND_RECEIVED): State.CLOSED,
    (State.UNBINDING, Trigger.UNBIND_DONE): State.CLOSED,
    **{(s, Trigger.LINK_LOST): State.CLOSED for s in NOT_CLOSED},
}

#: For each request: the role allowed to send it, and the states it may be sent in
#: (SMPP v3.4 section 2.3 and the "bind states" of each operation in section 4).
#: A role missing from the inner dict may never send that request.
REQUEST_RULES: Final[dict[CommandId, dict[Role, frozenset[State]]]] = {
    CommandId.BIND_TRANSMITTER: {Role.ESME: frozenset({State.OPEN})},
    CommandId.BIND_RECEIVER: {Role.ESME: frozenset({State.OPEN})},
    CommandId.BIND_TRANSCEIVER: {Role.ESME: frozenset({State.OPEN})},
    CommandId.OUTBIND: {Role.SMSC: frozenset({State.OPEN})},
    CommandId.UNBIND: {Role.ESME: BOUND, Role.SMSC: BOUND},
    # Lenient: answered in every state (some SMSCs probe before the bind completes).
    CommandId.ENQUIRE_LINK: {Role.ESME: NOT_CLOSED, Role.SMSC: NOT_CLOSED},
    CommandId.SUBMIT_SM: {Role.ESME: CAN_TRANSMIT},
    CommandId.QUERY_SM: {Role.ESME: CAN_TRANSMIT},
    CommandId.CANCEL_SM: {Role.ESME: CAN_TRANSMIT},
    CommandId.REPLACE_SM: {Role.ESME: CAN_TRANSMIT},
    CommandId.SUBMIT_MULTI: {Role.ESME: CAN_TRANSMIT},
    CommandId.DATA_SM: {Role.ESME: CAN_TRANSMIT, Role.SMSC: CAN_RECEIVE},
    CommandId.DELIVER_SM: {Role.SMSC: CAN_RECEIVE},
    CommandId.ALERT_NOTIFICATION: {Role.SMSC: CAN_RECEIVE},
}


def allowed_states(command_id: CommandId, sender: Role) -> frozenset[State] | None:
    """States in which ``sender`` may send request ``command_id``; None if never."""
    return REQUEST_RULES.get(command_id, {}).get(sender)


def rejection_status(command_id: CommandId, receiver: Role, state: State) -> CommandStatus | None:
    """Status refusing request ``command_id`` arriving at ``receiver`` in ``state``;
    None when it is acceptable. The sender may never send it: ESME_RINVCMDID;
    a bind while bound or binding: ESME_RALYBND; other wrong states: ESME_RINVBNDSTS.
    """
    if command_id is CommandId.UNBIND and state is State.UNBINDING:
        return None  # crossing unbinds: answer, then close
    states = allowed_states(command_id, receiver.peer)
    if states is None:
        return CommandStatus.ESME_RINVCMDID
    if state in states:
        return None
    if command_id in BIND_STARTED and (state in BOUND or state is State.BINDING):
        return CommandStatus.ESME_RALYBND
    return CommandStatus.ESME_RINVBNDSTS
