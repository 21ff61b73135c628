"""Outstanding requests of a session: sequence numbers, deadlines, window size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from simgate.codecs.smpp.constants import CommandId
from simgate.codecs.smpp.pdus import Pdu

#: Sequence numbers run from 1 to 0x7FFFFFFF (v3.4 section 3.2), then wrap to 1.
MAX_SEQUENCE: Final = 0x7FFF_FFFF


@dataclass(slots=True)
class Pending:
    request: Pdu
    sent_at: float
    deadline: float
    auto: bool  # keepalive sent by the session itself, not by the application


class Window:
    """Requests awaiting a response, by sequence number. Keepalives (``auto``)
    are tracked but do not count against ``size``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._pending: dict[int, Pending] = {}
        self._next = 1
        self._outstanding = 0  # pending that are not ``auto``: counted, not summed per send

    @property
    def outstanding(self) -> int:
        return self._outstanding

    def has_room(self) -> bool:
        return self.outstanding < self.size

    def next_sequence(self) -> int:
        """The number :meth:`add` will accept next (skips numbers still pending)."""
        sequence = self._next
        while sequence in self._pending:
            sequence = sequence + 1 if sequence < MAX_SEQUENCE else 1
        return sequence

    def skip_sequence(self) -> int:
        """Consume a number without tracking a request (outbind, alert_notification)."""
        sequence = self.next_sequence()
        self._next = sequence + 1 if sequence < MAX_SEQUENCE else 1
        return sequence

    def add(self, request: Pdu, now: float, timeout: float, *, auto: bool = False) -> None:
        """Track ``request``, numbered with :meth:`next_sequence`."""
        if request.sequence_number != self.next_sequence():
            raise ValueError(f"sequence {request.sequence_number} is not the next one")
        sequence = self.skip_sequence()
        self._pending[sequence] = Pending(request, now, now + timeout, auto)
        self._outstanding += not auto

    def get(self, sequence: int) -> Pending | None:
        return self._pending.get(sequence)

    def pop(self, sequence: int | None) -> Pending | None:
        pending = None if sequence is None else self._pending.pop(sequence, None)
        if pending is not None:
            self._outstanding -= not pending.auto
        return pending

    def pop_expired(self, now: float) -> list[Pending]:
        """Remove and return requests whose deadline is <= now, earliest first."""
        expired = sorted(
            (p for p in self._pending.values() if p.deadline <= now), key=lambda p: p.deadline
        )
        for pending in expired:
            self.pop(pending.request.sequence_number)
        return expired

    def earliest_deadline(self) -> float | None:
        return min((p.deadline for p in self._pending.values()), default=None)

    def has_enquire_link(self) -> bool:
        return any(p.request.COMMAND_ID is CommandId.ENQUIRE_LINK for p in self._pending.values())

    def clear(self) -> list[Pending]:
        """Forget everything; returns what was pending."""
        pending = list(self._pending.values())
        self._pending.clear()
        self._outstanding = 0
        return pending
