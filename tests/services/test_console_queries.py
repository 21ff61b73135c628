"""What the console reads (services/console_queries.py over store/console_queries.py)."""

from __future__ import annotations

import functools

import pytest

from simgate.domain import ids
from simgate.domain.messages import Event, State
from simgate.errors import NotFound
from simgate.push.base import PlannedPush, PushRequest
from simgate.runtime import Runtime
from simgate.services.console_queries import MessageFilter
from simgate.services.container import Services
from simgate.services.pushes import insert_planned
from simgate.testing.clock import FakeClock
from tests.store import util
from tests.support import push_events


async def _delivered_and_failed(runtime: Runtime, services: Services) -> tuple[int, int, int]:
    """Three messages of acme: one delivered, one failed by its receipt, one queued."""
    acme = await util.account(services)
    a, b, c = await util.queue(runtime, acme, 3)
    now = runtime.clock.now_ms()
    await util.lease(runtime.store, now, limit=2)
    await util.record(services, [util.ok(a), util.ok(b)], now)
    await util.report(services, [(f"{a}.0", 0), (f"{b}.0", 34)], now + 1000)
    return a, b, c


async def test_overview_counts_the_last_hour_by_minute(
    runtime: Runtime, services: Services, clock: FakeClock
) -> None:
    await _delivered_and_failed(runtime, services)
    o = await services.console.overview(None)
    assert (sum(o.hour.accepted), sum(o.hour.sent)) == (3, 2)
    assert (sum(o.hour.delivered), sum(o.hour.failed)) == (1, 1)
    assert o.hour.accepted[-1] == 3  # this minute is the last bucket
    assert (sum(o.day.accepted), o.delivery_rate) == (3, 0.5)
    assert (o.queue_depth, o.pushes_pending, o.pushes_dead) == (1, 0, 0)
    assert [a.name for a in o.accounts] == ["acme"]
    (sim,) = o.lines
    assert sim.sent == (2, 2, 2)
    assert len(sim.ports) == 8
    # An hour later the messages have left the hour's chart but not the day's.
    await clock.advance(3600)
    later = await services.console.overview(None)
    assert (sum(later.hour.accepted), sum(later.day.accepted)) == (0, 3)
    assert later.lines[0].sent == (0, 0, 2)  # since start: the hour's moved into the total
    await clock.advance(7200)
    assert (await services.console.overview(None)).lines[0].sent == (0, 0, 2)


async def test_an_accounts_overview_is_its_own(runtime: Runtime, services: Services) -> None:
    await _delivered_and_failed(runtime, services)
    other = await util.account(services, "other")
    o = await services.console.overview(other.id)
    assert sum(o.hour.accepted) == 0
    assert (o.queue_depth, o.pushes_pending, o.pushes_dead, o.lines) == (None, 0, 0, [])
    assert [a.name for a in o.accounts] == ["other"]


async def test_search_by_number_state_window_and_cursor(
    runtime: Runtime, services: Services, clock: FakeClock
) -> None:
    acme = await util.account(services)
    other = await util.account(services, "other")
    first = await util.queue(runtime, acme, 3)
    await clock.advance(120)
    later = await util.queue(runtime, other, 2, recipient="8613900000000")
    search = services.console.search_messages
    assert [m.id for m in await search(None, MessageFilter(), before_id=None)] == [
        *reversed(later),
        *reversed(first),
    ]
    page = await search(None, MessageFilter(), before_id=None, limit=2)
    rest = await search(None, MessageFilter(), before_id=page[-1].id, limit=10)
    assert [m.id for m in page + rest] == [*reversed(later), *reversed(first)]
    by_number = await search(None, MessageFilter(number="8613900000000"), before_id=None)
    assert [m.id for m in by_number] == list(reversed(later))
    assert await search(acme.id, MessageFilter(number="8613900000000"), before_id=None) == []
    window = MessageFilter(id_to=ids.upper_bound(clock.now_ms() - 60_000))
    assert [m.id for m in await search(None, window, before_id=None)] == list(reversed(first))
    queued = await search(None, MessageFilter(state=State.DELIVERED), before_id=None)
    assert queued == []
    assert [m.id for m in await search(other.id, MessageFilter(), before_id=None)] == list(
        reversed(later)
    )


async def test_a_message_page_with_its_history_receipt_and_pushes(
    runtime: Runtime, services: Services
) -> None:
    a, _, c = await _delivered_and_failed(runtime, services)
    request = PushRequest("POST", "http://127.0.0.1:9/r", {}, b"{}")
    planned = PlannedPush(request, order_key=f"msg:{a}", signing_secret=None, kind="r")
    # As the outbox stores it: the event that planned it names the message (issue 19).
    record = await util.get(runtime.store, a)
    await services.pushes.db.write(
        functools.partial(
            insert_planned,
            planned=[planned],
            now_ms=runtime.clock.now_ms(),
            events=[push_events.changed(record, Event.REPORT_DELIVERED)],
        )
    )
    d = await services.console.message(None, a)
    assert [s for s, _ in d.history] == ["ACCEPTED", "QUEUED", "SUBMITTING", "SENT", "DELIVERED"]
    assert [(p["seq"], p["status_code"]) for p in d.parts] == [(0, 0)]
    assert [p.kind for p in d.pushes] == ["r"]
    assert [p.kind for p in (await services.console.message(record.account_id, a)).pushes] == ["r"]
    assert (await services.console.message(None, c)).parts == []
    other = await util.account(services, "other")
    with pytest.raises(NotFound):
        await services.console.message(other.id, a)
    with pytest.raises(NotFound):
        await services.console.message(None, 1)
