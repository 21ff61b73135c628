"""The push service (services/pushes.py): planned pushes become rows, the sender's queue,
and the operators' checks."""

from __future__ import annotations

import dataclasses
import functools

import pytest

from simgate.domain.events import DomainEvent
from simgate.domain.messages import Event
from simgate.domain.pushes import AttemptResult
from simgate.errors import InvalidInput, NotFound
from simgate.lease_loop import PUSHES
from simgate.push.base import PlannedPush, PushRequest
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.services.pushes import endpoint_of, insert_planned
from simgate.store import pushes as outbox
from simgate.testing.clock import FakeClock
from tests.support import push_events


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("https://Example.COM/hook?a=1", "https://example.com:443"),
        ("http://example.com/hook", "http://example.com:80"),
        ("http://127.0.0.1:9/hook", "http://127.0.0.1:9"),
        ("http://[2001:db8::1]:8080/", "http://[2001:db8::1]:8080"),
        ("ftp://example.com/", "invalid:"),
        ("not a url", "invalid:"),
    ],
)
def test_endpoint_of(url: str, endpoint: str) -> None:
    assert endpoint_of(url) == endpoint


async def _plan(services: Services, *pushes: PlannedPush) -> list[str]:
    now = services.clock.now_ms()
    return await services.pushes.db.write(
        functools.partial(insert_planned, planned=list(pushes), now_ms=now)
    )


def _planned(url: str, *, key: str | None = None, secret: str | None = None) -> PlannedPush:
    request = PushRequest("POST", url, {"Content-Type": "application/json"}, b"{}")
    return PlannedPush(request, order_key=key, signing_secret=secret, kind="test.kind")


async def test_planned_pushes_are_stored_in_order(services: Services) -> None:
    assert await _plan(services) == []
    uids = await _plan(
        services,
        _planned("http://127.0.0.1:9/a", key="k", secret="s3cret"),
        _planned("ftp://nowhere/b"),
    )
    assert len(uids) == 2
    assert all(u.startswith("msg_") for u in uids)
    first, second = sorted(await services.pushes.list(), key=lambda p: p.id)
    assert [first.uid, second.uid] == uids
    assert (first.endpoint, first.order_key, first.kind, first.signed) == (
        "http://127.0.0.1:9",
        "k",
        "test.kind",
        True,
    )
    assert (first.method, first.url, first.body) == ("POST", "http://127.0.0.1:9/a", b"{}")
    assert first.headers == {"Content-Type": "application/json"}
    assert (first.state, first.attempts, first.in_flight) == ("pending", 0, False)
    assert (second.endpoint, second.signed) == ("invalid:", False)
    assert (await services.pushes.get(uids[1])).id == second.id
    assert (await services.pushes.get(str(first.id))).uid == uids[0]


async def test_the_queue_claims_records_and_sets_gauges(
    services: Services, clock: FakeClock
) -> None:
    queue = services.pushes.queue
    await _plan(
        services, _planned("http://127.0.0.1:9/a", key="k"), _planned("http://127.0.0.1:9/b")
    )
    now = clock.now_ms()
    claimed = await queue.claim(
        owner="w", now_ms=now, lease_until_ms=now + 60_000, limit=10, window=10, busy={}
    )
    assert [c.url for c in claimed] == ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]
    assert {c.lease_until_ms for c in claimed} == {now + 60_000}
    assert all(p.in_flight for p in await services.pushes.list())
    # A full window for the endpoint: nothing more for it.
    assert (
        await queue.claim(
            owner="w2",
            now_ms=now,
            lease_until_ms=now + 60_000,
            limit=10,
            window=1,
            busy={"http://127.0.0.1:9": 1},
        )
        == []
    )
    await queue.record(
        [AttemptResult(claimed[0].id, claimed[0].endpoint, "delivered", status=200)],
        owner="w",
        now_ms=now,
    )
    clock.set(now + 30_000)
    await queue.refresh_gauges(now_ms=clock.now_ms())
    registry = services.metrics.registry
    assert registry.get_sample_value("simgate_push_pending") == 1
    assert registry.get_sample_value("simgate_push_dead") == 0
    assert registry.get_sample_value("simgate_push_oldest_pending_age_seconds") == 30
    stats = await services.pushes.refresh_metrics()
    assert (stats.pending, stats.in_flight, stats.delivered) == (1, 1, 1)


async def test_operators_are_refused_what_would_break_the_outbox(services: Services) -> None:
    pushes = services.pushes
    with pytest.raises(InvalidInput, match="unknown push state 'lost'"):
        await pushes.list(states=["lost"])
    with pytest.raises(InvalidInput, match="only failed or dead"):
        await pushes.retry(states=["pending"])
    with pytest.raises(InvalidInput, match="only failed or dead"):
        await pushes.retry(states=["delivered"])
    with pytest.raises(InvalidInput, match="cannot be purged"):
        await pushes.purge(states=["pending", "dead"], older_than_seconds=0)
    with pytest.raises(NotFound, match="no push 42"):
        await pushes.get("42")
    with pytest.raises(NotFound):
        await pushes.get("msg_nothing")
    assert await pushes.retry() == 0
    assert await pushes.purge(states=["delivered"], older_than_seconds=0) == 0
    assert await pushes.pending_by_endpoint() == {}


async def test_validate_url_refuses_private_addresses(services: Services) -> None:
    with pytest.raises(InvalidInput):
        await services.pushes.validate_url("http://169.254.169.254/latest")


async def test_a_push_belongs_to_the_account_of_the_records_it_reports_on(
    services: Services,
) -> None:
    """Issue 19: the console scopes pushes by ``account_id`` and lists a record's pushes by
    its subjects; both come from the events that planned the push."""
    one, two = push_events.message(id=11, account_id=1), push_events.message(id=12, account_id=2)
    mo = push_events.inbound(id=13, account_id=2)
    events: list[DomainEvent] = [
        push_events.changed(one, Event.SUBMIT_OK),
        push_events.changed(two, Event.SUBMIT_OK),
        push_events.received(mo),
    ]

    def batch(*subjects: int) -> PlannedPush:
        return dataclasses.replace(_planned("http://127.0.0.1:9/d", key="d"), subjects=subjects)

    planned = [
        _planned("http://127.0.0.1:9/a", key="msg:12"),  # a message's push (itnio, OpenVox)
        _planned("http://127.0.0.1:9/a", key="msg:13"),  # itniotech's MO push of an SMS
        _planned("http://127.0.0.1:9/a", key="inbound:13"),  # OpenVox's
        batch(11),  # a Dinstar batch of one account's messages
        batch(11, 12),  # of two accounts' (the operator's)
        _planned("http://127.0.0.1:9/r", key="dinstar:register"),  # of no record
        _planned("http://127.0.0.1:9/a", key="msg:99"),  # a key no event names
    ]
    now = services.clock.now_ms()
    await services.pushes.db.write(
        functools.partial(insert_planned, planned=planned, now_ms=now, events=events)
    )
    rows = sorted(await services.pushes.list(), key=lambda p: p.id)
    assert [p.account_id for p in rows] == [2, 2, 2, 1, None, None, None]
    async with services.pushes.db.read() as conn:
        about = {r: await outbox.ids_about(conn, r) for r in (11, 12, 13, 99)}
    ids = [p.id for p in rows]
    assert about == {11: [ids[3], ids[4]], 12: [ids[0], ids[4]], 13: [ids[1], ids[2]], 99: []}


async def test_a_retry_wakes_the_push_senders(runtime: Runtime, clock: FakeClock) -> None:
    """An operator's retry makes pushes due now: the senders (in this process, and through
    the relays in ``run --worker-process``'s child) stop idling, not wait for their poll."""
    services = runtime.services
    assert services is not None
    queue = services.pushes.queue
    await _plan(services, _planned("http://127.0.0.1:9/a"))
    now = clock.now_ms()
    (claimed,) = await queue.claim(
        owner="w", now_ms=now, lease_until_ms=now + 60_000, limit=10, window=10, busy={}
    )
    await queue.record(
        [AttemptResult(claimed.id, claimed.endpoint, "dead", status=410)], owner="w", now_ms=now
    )
    relayed: list[str] = []
    runtime.wakeup.add_relay(relayed.append)
    assert await services.pushes.retry() == 1
    assert relayed == [PUSHES]
    assert await services.pushes.retry() == 0  # nothing requeued: nobody woken
    assert relayed == [PUSHES]
