"""Voice calls as values: what is queued, what a line reports, what is stored (spec §1.11-§1.16).

A call record is one callee of a ``sendCode`` (TTS) or ``sendGroup`` (audio file) request. Its
life is short and linear, so there is no transition table as for messages::

    QUEUED ──lease──▶ CALLING ──result──▶ DONE
       ▲                  │
       └──── redial ──────┘   (unanswered and recallCount not spent: again after recallInterval)

A CALLING row whose lease expires (its worker died mid-call) becomes DONE with SIP 500 and no
charge: it is never dialled again blindly (spec §7, the same rule as an UNKNOWN message).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# Answered = the callee picked up (SIP 200 OK to our INVITE), spec §7 "Voice".
SIP_OK = 200
# Our own reasons for ending a call, as the SIP final codes a caller would see (RFC 3261 §21).
SIP_BUSY = 486  # Busy Here
SIP_UNAVAILABLE = 480  # Temporarily Unavailable (the network gave up ringing)
SIP_CANCELLED = 487  # Request Terminated: we cancelled after maxRingingTime
SIP_TIMEOUT = 408  # Request Timeout: no provisional answer at all
SIP_DECLINED = 603  # Decline
SIP_SERVER_ERROR = 500  # the call was lost inside simgate (worker died mid-call)
SIP_SERVICE_UNAVAILABLE = 503  # the line could not place the call
SIP_PAYMENT_REQUIRED = 402  # the account ran out of money before the call was placed

SIP_REASONS: dict[int, str] = {
    200: "success",
    402: "insufficient balance",
    404: "number not found",
    408: "no answer",
    480: "temporarily unavailable",
    484: "address incomplete",
    486: "busy",
    487: "no answer",
    500: "call lost",
    503: "service unavailable",
    603: "declined",
}


def sip_reason(code: int) -> str:
    return SIP_REASONS.get(code, "failed")


class CallKind(enum.IntEnum):
    """The push's ``type`` (spec §1.16)."""

    GROUP = 1  # sendGroup: an uploaded audio file
    TTS = 2  # sendCode: text to speech ("verification code")


class CallState(enum.IntEnum):
    QUEUED = 0
    CALLING = 1
    DONE = 2


@dataclass(frozen=True, slots=True)
class CallOptions:
    """What a send request sets for each of its calls (spec §1.11, §1.12)."""

    display_num: str = ""
    loop_count: int = 1  # plays of the audio, 1..9
    called_info: str = ""
    recall_count: int = 0  # redials when unanswered, 0..9
    recall_interval_s: int = 300  # recallInterval is in minutes on the wire (default 5)
    max_duration_s: int | None = None  # hang up this long after the answer
    max_ringing_s: int = 60  # give up ringing after this long (20..120)


@dataclass(frozen=True, slots=True)
class Pricing:
    """The price snapshot taken at accept; the charge is computed from it at hang-up."""

    rate_micros: int  # USD per minute
    bill_period: str  # "20+20", "60+60", "6+6", "1+1"
    currency: str  # the account's currency
    quote_exchange_micros: int | None  # account currency per 1 USD, x 1e6; None for USD


@dataclass(frozen=True, slots=True)
class NewCall:
    id: int  # voiceId (19 digits, domain/ids.py)
    account_id: int
    app_id: int
    kind: CallKind
    callee: str
    audio_id: int  # voice_audio row to play
    file_id: str  # voiceFileId for group calls, "" for TTS
    area: str  # `code`: Country(Region) of the callee (spec §7)
    options: CallOptions
    pricing: Pricing
    submit_ms: int


@dataclass(frozen=True, slots=True)
class CallResult:
    """What one attempt came to, as the line and the dispatcher saw it (epoch ms, UTC)."""

    call_id: int
    line: str
    call_ms: int
    ringing_ms: int | None
    answer_ms: int | None
    hangup_ms: int
    sip_code: int
    reason: str
    dtmf: str = ""  # keys pressed while the call was up, in order

    @property
    def answered(self) -> bool:
        return self.answer_ms is not None and self.sip_code == SIP_OK

    @property
    def duration_s(self) -> int:
        """Talk time in whole seconds, to the nearest second (half up), as switches count
        ``billsec``; an answered call that lasted at all counts at least 1 s (then billed the
        initial step). Rounding up instead would bill a whole extra second for a few ms of
        signalling on every call that ran to its limit."""
        if self.answer_ms is None:
            return 0
        ms = max(0, self.hangup_ms - self.answer_ms)
        if ms == 0:
            return 0
        return max(1, (ms + 500) // 1000)


@dataclass(frozen=True, slots=True)
class VoiceCharge:
    """The money side of one finished call; see domain/billing.py for the formulas."""

    charged_duration_s: int
    rate_micros: int  # USD per minute
    base_cost_micros: int  # USD
    cost_micros: int  # USD
    currency: str
    quote_exchange_micros: int | None = None  # only when currency != USD
    settle_rate_micros: int | None = None
    settle_pay_micros: int | None = None

    @property
    def debit_micros(self) -> int:
        """What leaves the account's balance, in the account's currency."""
        return self.settle_pay_micros if self.settle_pay_micros is not None else self.cost_micros


@dataclass(frozen=True, slots=True)
class CallFinal:
    result: CallResult
    charge: VoiceCharge


@dataclass(frozen=True, slots=True)
class LeasedCall:
    """A queued call handed to a worker: everything needed to dial and bill it."""

    id: int
    account_id: int
    callee: str
    display_num: str
    audio_id: int
    loop_count: int
    max_duration_s: int | None
    max_ringing_s: int
    recall_count: int
    recall_interval_s: int
    recalls_done: int
    pricing: Pricing
    line: str | None  # the line of the previous attempt (a redial prefers another)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """A stored call, as recordGroup / recordGroupQuery / pushVoiceReport render it."""

    id: int
    account_id: int
    app_id: int
    kind: CallKind
    state: CallState
    callee: str
    display_num: str
    area: str
    file_id: str
    loop_count: int
    called_info: str
    recall_count: int
    recalls_done: int
    line: str | None
    submit_ms: int
    call_ms: int | None
    ringing_ms: int | None
    answer_ms: int | None
    hangup_ms: int | None
    call_duration_s: int
    charged_duration_s: int
    sip_code: int | None
    reason: str | None
    dtmf: str
    bill_period: str
    rate_micros: int
    base_cost_micros: int
    cost_micros: int
    currency: str
    quote_exchange_micros: int | None
    settle_rate_micros: int | None
    settle_pay_micros: int | None
    updated_ms: int

    @property
    def feedback_value(self) -> str:
        """``feedbackValue``: the first key pressed, ``-1`` when none (spec §1.14)."""
        return self.dtmf[0] if self.dtmf else "-1"


@dataclass(frozen=True, slots=True)
class VoiceFile:
    """An uploaded audio file (fileUpload / fileQuery, spec §1.13)."""

    id: int
    account_id: int
    file_id: str
    file_name: str
    format: str  # "mp3" | "m4a" | "wav"
    audio_id: int
    duration_ms: int
    size_bytes: int
    created_ms: int


@dataclass(frozen=True, slots=True)
class Audio:
    """Audio ready for a call: signed 16-bit little-endian mono PCM at 8 kHz (G.711's rate)."""

    pcm: bytes
    RATE = 8000

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) // 2 * 1000 // self.RATE
