"""Stored records as values: what queries return and what push formatters receive."""

from __future__ import annotations

from dataclasses import dataclass

from simgate.codecs.segments import Encoding
from simgate.domain.messages import State
from simgate.domain.values import value_type


@value_type  # built per recipient of every send (domain/values.py)
class NewMessage:
    """One recipient of an accepted send request, ready to insert."""

    id: int
    account_id: int
    app_id: int | None
    dialect: str
    client_ref: str | None
    task_id: int | None
    sender: str
    recipient: str
    text: str
    encoding: Encoding
    parts: int
    port_hint: str | None
    line: str
    price_micros: int
    currency: str
    report_requested: bool
    validity_until_ms: int


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: int
    account_id: int
    app_id: int | None
    dialect: str
    client_ref: str | None
    task_id: int | None
    sender: str
    recipient: str
    text: str
    encoding: Encoding
    parts: int
    port_hint: str | None
    line: str | None
    port: int | None
    state: State
    attempts: int
    report_requested: bool
    price_micros: int
    charge_micros: int
    currency: str
    first_ref: int | None
    parts_ok: int
    parts_reported: int
    status_code: int | None
    error_text: str | None
    accepted_ms: int
    queued_ms: int | None
    submitting_ms: int | None
    sent_ms: int | None
    delivered_ms: int | None
    failed_ms: int | None
    expired_ms: int | None
    rejected_ms: int | None
    unknown_ms: int | None
    updated_ms: int

    @property
    def final_ms(self) -> int | None:
        """When the message reached its current final state, if it has.

        Comparisons, not a dict built per call: renderers and the SMPP receipts read this
        for every record of a report (issue 15 "reads")."""
        state = self.state
        if state == State.DELIVERED:
            return self.delivered_ms
        if state == State.FAILED:
            return self.failed_ms
        if state == State.EXPIRED:
            return self.expired_ms
        if state == State.REJECTED:
            return self.rejected_ms
        return None


@dataclass(frozen=True, slots=True)
class InboundRecord:
    id: int
    account_id: int
    line: str
    port: int
    sender: str
    recipient: str
    text: str
    smsc: str
    imsi: str
    parts: int
    received_ms: int
    read: bool


@dataclass(slots=True)  # not frozen: frozen init costs 3x, for 50 000 rows a page
class SentRow:
    """A message as a sent-record list shows it: no text, no money (itnio getSentRcd)."""

    id: int
    recipient: str
    state: State
    # When the message reached ``state`` (sent_ms when that time is not recorded).
    reached_ms: int | None
