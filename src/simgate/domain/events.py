"""Changes and domain events, recorded in the same transaction as the change.

A *change* names what a unit of work changed (ids only): services record them. The event bus
turns changes into *domain events* that carry what subscribers need, and hands them to the
subscribers (the push outbox) inside that transaction, so a push row exists exactly when the
state change does.
"""

from __future__ import annotations

from dataclasses import dataclass

from simgate.domain.messages import Event, State


@dataclass(frozen=True, slots=True)
class MessageChange:
    message_id: int
    state: State
    event: Event
    at_ms: int


@dataclass(frozen=True, slots=True)
class InboundStored:
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
class CallDone:
    """A voice call reached its final result (DONE): pushVoiceReport is owed (spec §1.16)."""

    call_id: int
    at_ms: int


Change = MessageChange | InboundStored | PortChanged | UssdReplied | CallDone
# Until the bus enriches changes, subscribers receive the changes themselves.
DomainEvent = Change
