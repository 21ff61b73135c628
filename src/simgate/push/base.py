"""The seam between the push engine and the dialects that own push formats.

A dialect provides a :class:`PushPlanner`. Inside the transaction that changed a message's
state (or stored an incoming SMS, or saw a port go up or down), the engine hands every
planner the domain events; the planner reads what it needs through the same connection and
returns the pushes to make, built by pure format functions (event record → request). The
engine stores them as outbox rows in that same transaction and knows no format itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

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


class PushPlanner(Protocol):
    async def plan(
        self, conn: AsyncConnection, events: Sequence[DomainEvent]
    ) -> list[PlannedPush]: ...
