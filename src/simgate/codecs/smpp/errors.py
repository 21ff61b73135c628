"""Exceptions raised by the SMPP codec and session."""

from __future__ import annotations

from simgate.codecs.smpp.constants import CommandStatus


class SmppError(Exception):
    """Base class of every SMPP codec/session error."""


class SmppDecodeError(SmppError):
    """Bytes that are not a valid SMPP v3.4 PDU.

    The only exception :func:`decode` and :class:`PduFramer` raise on bad input.
    ``status`` is the command_status to put in the generic_nack answering it;
    ``command_id`` and ``sequence_number`` are set when the header could be read.
    """

    def __init__(
        self,
        reason: str,
        *,
        status: CommandStatus = CommandStatus.ESME_RINVMSGLEN,
        command_id: int | None = None,
        sequence_number: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.command_id = command_id
        self.sequence_number = sequence_number


class SmppEncodeError(SmppError, ValueError):
    """A PDU value that cannot be put on the wire (too long, wrong type, NUL in a
    C-octet string, out-of-range integer...)."""


class SmppSessionError(SmppError):
    """A local protocol error: the application asked the session to send a PDU that
    is not allowed in the current state/role (e.g. submit_sm before bind)."""


class WindowFullError(SmppSessionError):
    """The window of outstanding requests is full; wait for responses."""
