"""TESTING ONLY: a push format that pushes every domain event as JSON to one URL.

Enabled by ``[push] test_planner_url`` (and optionally ``test_planner_secret`` to sign). It
lets crash tests and ``bench/push_throughput.py`` drive the real engine in a real
``simgate run`` process independently of the dialects' formats. Never set it
in production: it pushes every event of every account to one place.

Body: ``{"event": "message"|"inbound"|"port", ...fields...}``; order key per message id, per
inbound id, or per line/port, so the engine's ordering guarantee is exercised too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from simgate.domain.events import DomainEvent, InboundReceived, MessageChanged, PortChanged
from simgate.push.base import PlannedPush, PushContext, PushRequest


class EchoPush:
    name = "test.echo"
    kinds: frozenset[type[DomainEvent]] = frozenset({MessageChanged, InboundReceived, PortChanged})

    def __init__(self, url: str, secret: str | None = None) -> None:
        self.url = url
        self.secret = secret

    def docs(self, events: Sequence[DomainEvent]) -> set[str]:
        return set()

    def plan(self, events: Sequence[DomainEvent], ctx: PushContext) -> list[PlannedPush]:
        return [p for p in map(self._one, events) if p is not None]

    def _one(self, e: DomainEvent) -> PlannedPush | None:
        if isinstance(e, MessageChanged):
            body = {"event": "message", "id": e.message_id, "state": e.state.name, "at": e.at_ms}
            key = f"msg:{e.message_id}"
        elif isinstance(e, InboundReceived):
            body = {"event": "inbound", "id": e.record.id, "at": e.at_ms}
            key = f"mo:{e.record.id}"
        elif isinstance(e, PortChanged):
            body = {"event": "port", "line": e.line, "port": e.port, "up": e.up, "at": e.at_ms}
            key = f"port:{e.line}:{e.port}"
        else:  # events this test format has no use for (e.g. USSD replies)
            return None
        return PlannedPush(
            request=PushRequest(
                method="POST",
                url=self.url,
                headers={"Content-Type": "application/json"},
                body=json.dumps(body, separators=(",", ":")).encode(),
            ),
            order_key=key,
            signing_secret=self.secret,
            kind="test.echo",
        )
