"""SMPP v3.4 numeric constants: command ids, command statuses, message states.

Values are those of SMPP v3.4 Issue 1.2 (section 5.1.2 for command ids, 5.1.3 for
command statuses, 5.2.28 for message states).
"""

from __future__ import annotations

import enum
from collections.abc import Container

RESPONSE_BIT = 0x8000_0000


class CommandId(enum.IntEnum):
    """SMPP v3.4 command_id values (section 5.1.2.1)."""

    GENERIC_NACK = 0x8000_0000
    BIND_RECEIVER = 0x0000_0001
    BIND_RECEIVER_RESP = 0x8000_0001
    BIND_TRANSMITTER = 0x0000_0002
    BIND_TRANSMITTER_RESP = 0x8000_0002
    QUERY_SM = 0x0000_0003
    QUERY_SM_RESP = 0x8000_0003
    SUBMIT_SM = 0x0000_0004
    SUBMIT_SM_RESP = 0x8000_0004
    DELIVER_SM = 0x0000_0005
    DELIVER_SM_RESP = 0x8000_0005
    UNBIND = 0x0000_0006
    UNBIND_RESP = 0x8000_0006
    REPLACE_SM = 0x0000_0007
    REPLACE_SM_RESP = 0x8000_0007
    CANCEL_SM = 0x0000_0008
    CANCEL_SM_RESP = 0x8000_0008
    BIND_TRANSCEIVER = 0x0000_0009
    BIND_TRANSCEIVER_RESP = 0x8000_0009
    OUTBIND = 0x0000_000B
    ENQUIRE_LINK = 0x0000_0015
    ENQUIRE_LINK_RESP = 0x8000_0015
    SUBMIT_MULTI = 0x0000_0021
    SUBMIT_MULTI_RESP = 0x8000_0021
    ALERT_NOTIFICATION = 0x0000_0102
    DATA_SM = 0x0000_0103
    DATA_SM_RESP = 0x8000_0103

    @property
    def is_response(self) -> bool:
        return bool(self & RESPONSE_BIT)

    @property
    def response_id(self) -> CommandId | None:
        """The command id answering this request (None for responses and for
        ``outbind``/``alert_notification``, which have no response)."""
        if self.is_response:
            return None
        try:
            return CommandId(self | RESPONSE_BIT)
        except ValueError:
            return None

    @property
    def request_id(self) -> CommandId | None:
        """The request this response answers (None for requests and generic_nack)."""
        if not self.is_response or self is CommandId.GENERIC_NACK:
            return None
        return CommandId(self & ~RESPONSE_BIT)


class CommandStatus(enum.IntEnum):
    """SMPP v3.4 command_status (error) codes, section 5.1.3, complete table."""

    ESME_ROK = 0x0000_0000  # No error
    ESME_RINVMSGLEN = 0x0000_0001  # Message length is invalid
    ESME_RINVCMDLEN = 0x0000_0002  # Command length is invalid
    ESME_RINVCMDID = 0x0000_0003  # Invalid command id
    ESME_RINVBNDSTS = 0x0000_0004  # Incorrect bind status for given command
    ESME_RALYBND = 0x0000_0005  # ESME already in bound state
    ESME_RINVPRTFLG = 0x0000_0006  # Invalid priority flag
    ESME_RINVREGDLVFLG = 0x0000_0007  # Invalid registered delivery flag
    ESME_RSYSERR = 0x0000_0008  # System error
    ESME_RINVSRCADR = 0x0000_000A  # Invalid source address
    ESME_RINVDSTADR = 0x0000_000B  # Invalid destination address
    ESME_RINVMSGID = 0x0000_000C  # Message id is invalid
    ESME_RBINDFAIL = 0x0000_000D  # Bind failed
    ESME_RINVPASWD = 0x0000_000E  # Invalid password
    ESME_RINVSYSID = 0x0000_000F  # Invalid system id
    ESME_RCANCELFAIL = 0x0000_0011  # cancel_sm failed
    ESME_RREPLACEFAIL = 0x0000_0013  # replace_sm failed
    ESME_RMSGQFUL = 0x0000_0014  # Message queue full
    ESME_RINVSERTYP = 0x0000_0015  # Invalid service type
    ESME_RINVNUMDESTS = 0x0000_0033  # Invalid number of destinations
    ESME_RINVDLNAME = 0x0000_0034  # Invalid distribution list name
    ESME_RINVDESTFLAG = 0x0000_0040  # Destination flag is invalid (submit_multi)
    ESME_RINVSUBREP = 0x0000_0042  # Invalid 'submit with replace' request
    ESME_RINVESMCLASS = 0x0000_0043  # Invalid esm_class field data
    ESME_RCNTSUBDL = 0x0000_0044  # Cannot submit to distribution list
    ESME_RSUBMITFAIL = 0x0000_0045  # submit_sm or submit_multi failed
    ESME_RINVSRCTON = 0x0000_0048  # Invalid source address TON
    ESME_RINVSRCNPI = 0x0000_0049  # Invalid source address NPI
    ESME_RINVDSTTON = 0x0000_0050  # Invalid destination address TON
    ESME_RINVDSTNPI = 0x0000_0051  # Invalid destination address NPI
    ESME_RINVSYSTYP = 0x0000_0053  # Invalid system_type field
    ESME_RINVREPFLAG = 0x0000_0054  # Invalid replace_if_present flag
    ESME_RINVNUMMSGS = 0x0000_0055  # Invalid number of messages
    ESME_RTHROTTLED = 0x0000_0058  # Throttling error (ESME exceeded allowed limits)
    ESME_RINVSCHED = 0x0000_0061  # Invalid scheduled delivery time
    ESME_RINVEXPIRY = 0x0000_0062  # Invalid message validity period
    ESME_RINVDFTMSGID = 0x0000_0063  # Predefined message invalid or not found
    ESME_RX_T_APPN = 0x0000_0064  # ESME receiver temporary app error code
    ESME_RX_P_APPN = 0x0000_0065  # ESME receiver permanent app error code
    ESME_RX_R_APPN = 0x0000_0066  # ESME receiver reject message error code
    ESME_RQUERYFAIL = 0x0000_0067  # query_sm request failed
    ESME_RINVOPTPARSTREAM = 0x0000_00C0  # Error in the optional part of the PDU body
    ESME_ROPTPARNOTALLWD = 0x0000_00C1  # Optional parameter not allowed
    ESME_RINVPARLEN = 0x0000_00C2  # Invalid parameter length
    ESME_RMISSINGOPTPARAM = 0x0000_00C3  # Expected optional parameter missing
    ESME_RINVOPTPARAMVAL = 0x0000_00C4  # Invalid optional parameter value
    ESME_RDELIVERYFAILURE = 0x0000_00FE  # Delivery failure (data_sm_resp)
    ESME_RUNKNOWNERR = 0x0000_00FF  # Unknown error


def as_status(value: int) -> CommandStatus | int:
    """``CommandStatus(value)`` when the code is in the table, else the plain int
    (0x400-0x4FF are vendor specific, everything else is reserved)."""
    try:
        return CommandStatus(value)
    except ValueError:
        return value


class StatusClass(enum.Enum):
    OK = "ok"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"


#: Statuses after which resubmitting the same message later may succeed: the SMSC
#: is overloaded or throttling us, had an internal error, the receiving side
#: reported a temporary error, or our bind was in a wrong state (rebind, retry).
RETRYABLE_STATUSES: frozenset[int] = frozenset(
    {
        CommandStatus.ESME_RMSGQFUL,
        CommandStatus.ESME_RTHROTTLED,
        CommandStatus.ESME_RSYSERR,
        CommandStatus.ESME_RX_T_APPN,
        CommandStatus.ESME_RINVBNDSTS,
    }
)

#: Subset of the retryable statuses that mean "slow down".
THROTTLING_STATUSES: frozenset[int] = frozenset(
    {CommandStatus.ESME_RMSGQFUL, CommandStatus.ESME_RTHROTTLED}
)


def classify_status(status: int, *, extra_retryable: Container[int] = ()) -> StatusClass:
    """OK, RETRYABLE or PERMANENT. Unknown and vendor-specific codes are permanent
    unless listed in ``extra_retryable`` (per-SMSC configuration)."""
    if status == CommandStatus.ESME_ROK:
        return StatusClass.OK
    if status in RETRYABLE_STATUSES or status in extra_retryable:
        return StatusClass.RETRYABLE
    return StatusClass.PERMANENT


def is_retryable(status: int, *, extra_retryable: Container[int] = ()) -> bool:
    return classify_status(status, extra_retryable=extra_retryable) is StatusClass.RETRYABLE


def is_throttling(status: int) -> bool:
    return status in THROTTLING_STATUSES


class MessageState(enum.IntEnum):
    """message_state values (section 5.2.28) with their delivery receipt ``stat:``
    abbreviations (Appendix B)."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8

    @property
    def stat(self) -> str:
        """The 7-letter receipt abbreviation, e.g. ``DELIVRD``."""
        return _STAT_OF[self]

    @property
    def is_final(self) -> bool:
        """Every state but ENROUTE is final in SMPP v3.4."""
        return self is not MessageState.ENROUTE

    @classmethod
    def from_stat(cls, text: str) -> MessageState | None:
        """Parse a receipt ``stat:`` value (case-insensitive; the abbreviation or the
        full state name). None when unrecognised."""
        return _STATE_OF_TEXT.get(text.strip().upper())


_STAT_OF: dict[MessageState, str] = {
    MessageState.ENROUTE: "ENROUTE",
    MessageState.DELIVERED: "DELIVRD",
    MessageState.EXPIRED: "EXPIRED",
    MessageState.DELETED: "DELETED",
    MessageState.UNDELIVERABLE: "UNDELIV",
    MessageState.ACCEPTED: "ACCEPTD",
    MessageState.UNKNOWN: "UNKNOWN",
    MessageState.REJECTED: "REJECTD",
}
_STATE_OF_TEXT: dict[str, MessageState] = {v: k for k, v in _STAT_OF.items()} | {
    s.name: s for s in MessageState
}


class Ton(enum.IntEnum):
    """Type of number (section 5.2.5)."""

    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL = 2
    NETWORK_SPECIFIC = 3
    SUBSCRIBER_NUMBER = 4
    ALPHANUMERIC = 5
    ABBREVIATED = 6


class Npi(enum.IntEnum):
    """Numbering plan indicator (section 5.2.6)."""

    UNKNOWN = 0
    ISDN = 1
    DATA = 3
    TELEX = 4
    LAND_MOBILE = 6
    NATIONAL = 8
    PRIVATE = 9
    ERMES = 10
    INTERNET = 14
    WAP = 18


class EsmClass(enum.IntFlag):
    """Bits of esm_class (section 5.2.12) that simgate cares about."""

    DEFAULT = 0x00
    DATAGRAM_MODE = 0x01
    FORWARD_MODE = 0x02
    STORE_AND_FORWARD_MODE = 0x03
    SMSC_DELIVERY_RECEIPT = 0x04
    SME_DELIVERY_ACK = 0x08
    SME_MANUAL_ACK = 0x10
    CONVERSATION_ABORT = 0x18
    INTERMEDIATE_NOTIFICATION = 0x20
    UDHI = 0x40
    REPLY_PATH = 0x80


#: esm_class bits 5..2 hold the message type; 0b0001 (0x04) is a delivery receipt.
ESM_MESSAGE_TYPE_MASK = 0x3C

SMPP_VERSION_34 = 0x34
