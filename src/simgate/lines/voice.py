"""The voice-line interface: what every call driver (sim, sip) offers the call dispatcher.

A driver only places calls and reports what happens on them; the dispatcher
(dispatch/calls.py) paces the calls, and the call flow (domain/call_flow.py) owns the policy:
maxRingingTime, maxDuration, loop counts, redials and billing. So a SIP line slots in beside
the simulated one without changing the dialect, the records or the dispatcher.

One call, as events (each at most once except DTMF, always ending with ENDED)::

    dial() ─▶ RINGING? ─▶ ANSWERED ─▶ DTMF* ... PLAYED? ─▶ ENDED(sip_code)
                    └──────────────────────────────────────▶ ENDED(486/480/603/503...)

* ``RINGING``: a provisional 180/183 came (RFC 3261 §21.1).
* ``ANSWERED``: 200 OK; the dispatcher then calls :meth:`Call.play`.
* ``DTMF``: a key (RFC 4733 telephone-event, or SIP INFO), ``digit`` in ``0-9*#A-D``.
* ``PLAYED``: every loop of the audio has been played.
* ``ENDED``: the call is over; ``sip_code`` is 200 for an answered call (whoever hung up),
  else the final failure code; ``by_remote`` tells who ended it.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from simgate.domain.calls import Audio


class CallEventKind(enum.Enum):
    RINGING = "ringing"
    ANSWERED = "answered"
    DTMF = "dtmf"
    PLAYED = "played"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class CallEvent:
    kind: CallEventKind
    at_ms: int
    digit: str = ""
    sip_code: int = 0
    reason: str = ""
    by_remote: bool = False


@dataclass(frozen=True, slots=True)
class CallRequest:
    call_id: int
    callee: str  # digits with country code (7-15)
    caller: str  # displayNum, "" = the line's own number
    attempt: int = 0  # 0 = the first dial, n = the n-th redial (recallCount)


class Call(Protocol):
    def events(self) -> AsyncIterator[CallEvent]:
        """The call's events in order; the iterator stops after ENDED."""

    async def play(self, audio: Audio, loops: int) -> None:
        """Start playing ``audio`` ``loops`` times (after ANSWERED); PLAYED follows."""

    async def hangup(self) -> None:
        """End the call now: CANCEL before the answer, BYE after. ENDED follows."""


class VoiceLine(Protocol):
    name: str
    # Pacing the dispatcher applies (carriers and SIP trunks cap both).
    calls_per_second: float
    max_concurrent: int

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Hang up every call in progress (each still ends with ENDED)."""

    async def dial(self, request: CallRequest) -> Call:
        """Place the call. Never raises for a call that fails: it ENDs with a SIP code."""
