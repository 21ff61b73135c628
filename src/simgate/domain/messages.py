"""Outbound message states and their transition table (spec §7, "All families").

ACCEPTED → QUEUED → SUBMITTING → SENT → DELIVERED, or FAILED, EXPIRED, REJECTED, UNKNOWN.
UNKNOWN means "may have reached the line, no answer": it is never resent blindly; a late
delivery report can still resolve it, and validity ends it as EXPIRED.

Charging rule: an accepted message is charged per part; it is refunded when it ends before
leaving simgate (REJECTED by the line at submit, EXPIRED or cancelled while queued).
"""

from __future__ import annotations

import enum


class State(enum.IntEnum):
    # Stored as small integers; the values are part of the database format.
    ACCEPTED = 0
    QUEUED = 1
    SUBMITTING = 2
    SENT = 3
    DELIVERED = 4
    FAILED = 5
    EXPIRED = 6
    REJECTED = 7
    UNKNOWN = 8


class Event(enum.Enum):
    QUEUE = "queue"  # committed and due for dispatch
    LEASE = "lease"  # a worker claimed it
    SUBMIT_OK = "submit_ok"  # the line accepted it
    SUBMIT_RETRY = "submit_retry"  # the line said "later" (throttled, queue full, port down)
    SUBMIT_REJECTED = "submit_rejected"  # the line refused it for good, before it left
    SUBMIT_FAILED = "submit_failed"  # retries exhausted
    LEASE_EXPIRED = "lease_expired"  # the worker vanished mid-submit
    # The operator says "it never left": the expired-lease policy (from SUBMITTING), or
    # `simgate messages resend` after checking the line (from UNKNOWN).
    RESEND = "resend"
    REPORT_DELIVERED = "report_delivered"
    REPORT_FAILED = "report_failed"
    EXPIRE = "expire"  # validity passed
    CANCEL = "cancel"  # stopped by the client before leaving


S, E = State, Event

TRANSITIONS: dict[tuple[State, Event], State] = {
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
    # A report can overtake the recording of the submit result (SMPP receipts often do).
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

FINAL: frozenset[State] = frozenset({S.DELIVERED, S.FAILED, S.EXPIRED, S.REJECTED})

# States in which the message has certainly not left simgate: ending here refunds the charge.
REFUNDABLE_ENDINGS: frozenset[tuple[State, Event]] = frozenset(
    {
        (S.QUEUED, E.EXPIRE),
        (S.QUEUED, E.CANCEL),
        (S.ACCEPTED, E.CANCEL),
        (S.SUBMITTING, E.SUBMIT_REJECTED),
    }
)


class IllegalTransition(ValueError):
    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"no transition from {state.name} on {event.value}")
        self.state = state
        self.event = event


def next_state(state: State, event: Event) -> State:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(state, event) from None


def sources_of(event: Event) -> tuple[State, ...]:
    """States from which ``event`` is allowed: used to guard bulk UPDATEs in SQL."""
    return tuple(sorted(s for (s, e) in TRANSITIONS if e is event))


def is_refund(state: State, event: Event) -> bool:
    return (state, event) in REFUNDABLE_ENDINGS


# Which timestamp column records entry into each state ("a timestamp per state").
STATE_TIME_COLUMN: dict[State, str] = {
    S.ACCEPTED: "accepted_ms",
    S.QUEUED: "queued_ms",
    S.SUBMITTING: "submitting_ms",
    S.SENT: "sent_ms",
    S.DELIVERED: "delivered_ms",
    S.FAILED: "failed_ms",
    S.EXPIRED: "expired_ms",
    S.REJECTED: "rejected_ms",
    S.UNKNOWN: "unknown_ms",
}
