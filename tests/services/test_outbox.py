"""The push outbox subscriber: documents for the formats, plans in format order, rows stored."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from simgate.domain.events import (
    CallFinished,
    DomainEvent,
    InboundReceived,
    MessageChanged,
    PortChanged,
    UssdReplied,
)
from simgate.push.base import PlannedPush, PushContext, PushRequest
from simgate.services.container import Services
from simgate.services.outbox import PushOutbox
from simgate.store import Store
from simgate.testing.clock import FakeClock

ALL_KINDS: frozenset[type[DomainEvent]] = frozenset(
    {MessageChanged, InboundReceived, CallFinished, PortChanged, UssdReplied}
)


class Recorder:
    """A format that asks for documents, keeps the context it got and plans one push."""

    def __init__(
        self, name: str, keys: set[str], kinds: frozenset[type[DomainEvent]] = ALL_KINDS
    ) -> None:
        self.name = name
        self.keys = keys
        self.kinds = kinds
        self.seen: list[PushContext] = []
        self.events: list[list[DomainEvent]] = []

    def docs(self, events: Sequence[DomainEvent]) -> set[str]:
        return set(self.keys)

    def plan(self, events: Sequence[DomainEvent], ctx: PushContext) -> list[PlannedPush]:
        self.seen.append(ctx)
        self.events.append(list(events))
        request = PushRequest("POST", f"http://127.0.0.1:9/{self.name}", {}, b"{}")
        return [PlannedPush(request, order_key=self.name, kind=f"test.{self.name}")]


async def test_formats_get_the_documents_they_asked_for_and_plan_in_order(
    services: Services, store: Store, clock: FakeClock
) -> None:
    await store.db.write(functools.partial(store.accounts.put_doc, key="a", value={"x": 1}))
    first, second = Recorder("one", {"a"}), Recorder("two", {"b"})
    outbox = PushOutbox(store=store, formats=[first, second], clock=clock)
    events = [PortChanged("sim", 0, True, 1)]
    notes = {"test.note": {1: 2}}
    async with store.db.read() as conn:
        planned = await outbox.plan(conn, events, notes)
    assert [p.kind for p in planned] == ["test.one", "test.two"]
    expected = PushContext(clock.now_ms(), {"a": {"x": 1}, "b": None}, notes)
    assert first.seen == second.seen == [expected]

    await store.db.write(functools.partial(outbox, events=events, notes={}))
    rows = await services.pushes.list(kind="test.one") + await services.pushes.list(kind="test.two")
    assert sorted((r.order_key, r.url) for r in rows) == [
        ("one", "http://127.0.0.1:9/one"),
        ("two", "http://127.0.0.1:9/two"),
    ]
    assert rows[0].id < rows[1].id  # stored in format order


async def test_no_events_or_no_formats_plan_nothing(store: Store, clock: FakeClock) -> None:
    fmt = Recorder("one", {"a"})
    async with store.db.read() as conn:
        assert await PushOutbox(store=store, formats=[fmt], clock=clock).plan(conn, [], {}) == []
        events = [PortChanged("sim", 0, True, 1)]
        assert await PushOutbox(store=store, formats=[], clock=clock).plan(conn, events, {}) == []
    assert fmt.seen == []


async def test_a_format_sees_only_its_kinds_in_order_and_is_skipped_without_them(
    store: Store, clock: FakeClock
) -> None:
    ports = Recorder("ports", set(), frozenset({PortChanged}))
    ussd = Recorder("ussd", {"u"}, frozenset({UssdReplied}))
    both = Recorder("both", set())
    up, down = PortChanged("sim", 0, True, 1), PortChanged("sim", 0, False, 3)
    reply = UssdReplied("sim", 0, "balance 5", 2)
    outbox = PushOutbox(store=store, formats=[ports, ussd, both], clock=clock)
    async with store.db.read() as conn:
        planned = await outbox.plan(conn, [up, reply, down], {})
        assert [p.kind for p in planned] == ["test.ports", "test.ussd", "test.both"]
        assert ports.events == [[up, down]]
        assert ussd.events == [[reply]]
        assert both.events == [[up, reply, down]]
        # No USSD in this unit of work: that format is not asked, not even for documents.
        planned = await outbox.plan(conn, [up], {})
    assert [p.kind for p in planned] == ["test.ports", "test.both"]
    assert len(ussd.events) == 1
    assert ussd.seen[0].docs == {"u": None}
