"""Domain events: what changed, recorded in the same transaction as the change.

Subscribers (the push outbox) receive them inside that transaction, so a push row exists
exactly when the state change does (issue #3, "Outbox").
"""

from __future__ import annotations

from dataclasses import dataclass

from simgate.domain.messages import Event, State


@dataclass(frozen=True, slots=True)
class MessageChanged:
    message_id: int
    state: State
    event: Event
    at_ms: int


@dataclass(frozen=True, slots=True)
class InboundReceived:
    inbound_id: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class PortChanged:
    line: str
    port: int
    up: bool
    at_ms: int


@dataclass(frozen=True, slots=True)
class UssdReplied:
    """A port received a USSD answer (Dinstar ``ussd`` push, spec §2.9)."""

    line: str
    port: int
    text: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class CallFinished:
    """A voice call reached its final result (DONE): pushVoiceReport is owed (spec §1.16)."""

    call_id: int
    at_ms: int


DomainEvent = MessageChanged | InboundReceived | PortChanged | UssdReplied | CallFinished
