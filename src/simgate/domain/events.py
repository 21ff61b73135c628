"""Changes and domain events, recorded in the same transaction as the change.

A *change* names what a unit of work changed (ids only): services record them. The event bus
turns changes into *domain events* that carry what subscribers need, and hands them to the
subscribers (the push outbox) inside that transaction, so a push row exists exactly when the
state change does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from simgate.domain.accounts import Account, App
from simgate.domain.calls import CallRecord
from simgate.domain.messages import Event, State
from simgate.domain.records import InboundRecord, MessageRecord


class MessageChange(NamedTuple):
    """A message reached ``state`` by ``event`` (a NamedTuple: the worker records one or two
    per message, and a frozen dataclass cost 3.5 times as much to build, domain/queue.py)."""

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


# ---- domain events: what subscribers receive, carrying what they need ---------------------
@dataclass(frozen=True, slots=True)
class MessageChanged:
    """A message reached ``state`` by ``event``; ``record`` is the row as this unit of work
    left it (``record.state`` may be later than ``state`` when one transaction moved it twice)."""

    record: MessageRecord
    state: State
    event: Event
    at_ms: int
    account: Account
    app: App | None

    @property
    def message_id(self) -> int:
        return self.record.id


@dataclass(frozen=True, slots=True)
class InboundReceived:
    """An incoming SMS was stored; ``apps`` are all of the account's apps, in id order."""

    record: InboundRecord
    at_ms: int
    account: Account
    apps: tuple[App, ...]


@dataclass(frozen=True, slots=True)
class CallFinished:
    """A voice call reached its final result (pushVoiceReport, spec §1.16)."""

    record: CallRecord
    at_ms: int
    account: Account
    app: App | None


DomainEvent = MessageChanged | InboundReceived | CallFinished | PortChanged | UssdReplied
