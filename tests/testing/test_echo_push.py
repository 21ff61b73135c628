"""The testing-only echo format: every event as JSON to one URL, keyed per subject."""

from __future__ import annotations

import json

from simgate.domain.events import CallFinished, DomainEvent, PortChanged, UssdReplied
from simgate.domain.messages import Event, State
from simgate.testing.echo_push import EchoPush
from tests.support.itnio_calls import SEED_CALL
from tests.support.push_events import ACCOUNT, changed, context, inbound, message, received

URL = "http://127.0.0.1:9/events"


def test_messages_inbound_and_ports_are_echoed_signed() -> None:
    fmt = EchoPush(URL, "whsec_c2VjcmV0")
    m, r = message(state=State.DELIVERED), inbound()
    events: list[DomainEvent] = [
        changed(m, Event.SUBMIT_OK, state=State.SENT, at_ms=5),
        received(r),
        PortChanged("sim", 2, False, 7),
        UssdReplied("sim", 2, "ignored", 8),
        CallFinished(SEED_CALL, 9, ACCOUNT, None),
    ]
    assert fmt.docs(events) == set()
    pushes = fmt.plan(events, context())
    assert [json.loads(p.request.body or b"") for p in pushes] == [
        {"event": "message", "id": m.id, "state": "SENT", "at": 5},
        {"event": "inbound", "id": r.id, "at": r.received_ms},
        {"event": "port", "line": "sim", "port": 2, "up": False, "at": 7},
    ]
    assert [p.order_key for p in pushes] == [f"msg:{m.id}", f"mo:{r.id}", "port:sim:2"]
    for p in pushes:
        assert (p.request.method, p.request.url, p.kind) == ("POST", URL, "test.echo")
        assert p.request.headers == {"Content-Type": "application/json"}
        assert p.signing_secret == "whsec_c2VjcmV0"
