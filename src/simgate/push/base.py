"""The seam between the push engine and the dialects that own push formats.

A dialect provides a :class:`PushFormat`: a pure function from domain events (which carry the
record, account and app they are about, domain/events.py) to the pushes they owe. The push
outbox (services/outbox.py) asks every format which stored documents it needs, loads them
inside the transaction of the change, calls ``plan`` and stores the planned pushes as outbox
rows in that same transaction; it knows no format itself, and a format knows no store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from simgate.domain.events import DomainEvent


@dataclass(frozen=True, slots=True)
class PushRequest:
    method: Literal["GET", "POST"]
    url: str  # complete URL; for GET pushes it carries the query string
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class PlannedPush:
    request: PushRequest
    # Pushes with the same (endpoint, order_key) are delivered in the order planned, so a
    # message's "delivered" never overtakes its "sent". Use e.g. f"msg:{message_id}".
    order_key: str | None = None
    # When set, the engine adds Standard Webhooks headers (webhook-id/-timestamp/-signature).
    signing_secret: str | None = None
    # For operators: which dialect and event produced it ("itnio.report", "openvox.mo", ...).
    kind: str = ""
    # The messages or incoming SMS the push reports on, when its order key does not name the
    # one record (a Dinstar push batches many): the console lists a record's pushes by them.
    subjects: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PushContext:
    """What a format may know besides the events, read in the transaction of the change."""

    now_ms: int
    # The stored documents the formats asked for (``PushFormat.docs``); None: not stored.
    docs: Mapping[str, Mapping[str, Any] | None]
    # Numbers other subscribers handed out in this transaction, by note name, e.g.
    # "dinstar.inbound_seq": {inbound_id: incoming_sms_id}.
    notes: Mapping[str, Mapping[int, int]]


class PushFormat(Protocol):
    name: str
    # The event types the format reads: the outbox hands it only those, and skips it for a
    # unit of work that has none (a batch of finished calls is nothing to an SMS gateway's
    # format), so a format pays nothing for the events of another.
    kinds: frozenset[type[DomainEvent]]
    # Optional (read with getattr): ``message_dialects``, the dialects of the messages whose
    # MessageChanged the format reads (it ignores the others': a promise, not a filter); the
    # bus builds no record for a message no subscriber reads (services/events.py). Without
    # it, the format reads every message.
    # Optional too: ``interest_docs`` (prefixes of the stored documents that hold its push
    # settings) with ``interest(docs, apps)``, whose messages may owe a push under the
    # settings now (push URLs configured), given those documents and every app with push
    # settings. The outbox caches it (services/push_interest.py) and the bus reads no
    # record of a message nobody will be pushed for (issue 15).

    def docs(self, events: Sequence[DomainEvent]) -> set[str]:
        """The keys of the stored documents ``plan`` needs for these events."""
        ...

    def plan(self, events: Sequence[DomainEvent], ctx: PushContext) -> list[PlannedPush]:
        """The pushes these events owe, in delivery order; pure (no I/O)."""
        ...
