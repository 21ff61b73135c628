"""Delivery reports per part settle messages (README step 3; spec §7 Dinstar: worst part wins)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.events import Change
from simgate.domain.messages import Event, State
from simgate.domain.queue import SubmitRecord
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.store import Store

from .util import account, get, lease, ok, orphans, queue, record, report


async def _sent(services: Services, runtime: Runtime, n: int = 1, parts: int = 1) -> list[int]:
    acc = await account(services)
    ids = await queue(runtime, acc, n, parts=parts)
    now = services.clock.now_ms()
    await lease(runtime.store, now)
    await record(services, [ok(mid, parts) for mid in ids], now)
    return ids


async def test_all_parts_delivered(services: Services, runtime: Runtime, store: Store) -> None:
    now = services.clock.now_ms()
    (mid,) = await _sent(services, runtime, parts=3)
    assert await report(services, [(f"{mid}.0", 0), (f"{mid}.2", 0)], now + 5) == 2
    m = await get(store, mid)
    assert (m.state, m.parts_reported) == (State.SENT, 2)
    assert await report(services, [(f"{mid}.1", 0)], now + 9) == 1
    m = await get(store, mid)
    assert (m.state, m.parts_reported, m.status_code) == (State.DELIVERED, 3, 0)
    assert m.delivered_ms == now + 9
    async with store.db.read() as conn:
        parts = await store.messages.parts_of(conn, mid)
    assert [p["status_code"] for p in parts] == [0, 0, 0]
    assert [p["reported_ms"] for p in parts] == [now + 5, now + 9, now + 5]


async def test_one_failed_part_fails_with_worst_code(
    services: Services, runtime: Runtime, store: Store
) -> None:
    now = services.clock.now_ms()
    (mid,) = await _sent(services, runtime, parts=3)
    await report(services, [(f"{mid}.0", 0), (f"{mid}.1", 65), (f"{mid}.2", 69)], now)
    m = await get(store, mid)
    assert (m.state, m.status_code) == (State.FAILED, 69)
    assert m.failed_ms == now
    assert m.charge_micros > 0  # it left simgate: no refund


async def test_many_messages_in_one_batch(
    services: Services, runtime: Runtime, store: Store
) -> None:
    now = services.clock.now_ms()
    a, b, c = await _sent(services, runtime, 3, parts=2)
    n = await report(
        services,
        [(f"{a}.0", 0), (f"{a}.1", 0), (f"{b}.0", 0), (f"{b}.1", 70), (f"{c}.1", 0)],
        now,
    )
    assert n == 5
    states = [(await get(store, x)).state for x in (a, b, c)]
    assert states == [State.DELIVERED, State.FAILED, State.SENT]


async def test_duplicate_report_is_ignored(
    services: Services, runtime: Runtime, store: Store
) -> None:
    now = services.clock.now_ms()
    (mid,) = await _sent(services, runtime)
    seen: list[Sequence[Change]] = []

    async def hook(conn: AsyncConnection, events: Sequence[Change]) -> None:
        seen.append(events)

    runtime.changes.subscribe(hook)
    assert await report(services, [(f"{mid}.0", 0)], now) == 1
    assert len(seen) == 1
    # Redelivered with another status: ignored, the first report stands; no new event.
    assert await report(services, [(f"{mid}.0", 65)], now + 1000) == 0
    m = await get(store, mid)
    assert (m.state, m.status_code, m.delivered_ms) == (State.DELIVERED, 0, now)
    assert len(seen) == 1
    assert await orphans(store) == 0


async def test_report_before_submit_is_kept_and_applied(
    services: Services, runtime: Runtime
) -> None:
    """An SMPP receipt may overtake submit_sm_resp: the report waits as an orphan."""
    store, now = runtime.store, services.clock.now_ms()
    acc = await account(services)
    (mid,) = await queue(runtime, acc, parts=2)
    await lease(store, now)
    assert await report(services, [(f"{mid}.0", 0), (f"{mid}.1", 0)], now + 1) == 0
    assert await orphans(store) == 2
    assert (await get(store, mid)).state is State.SUBMITTING
    await record(services, [ok(mid, 2)], now + 2)
    m = await get(store, mid)
    assert m.state is State.DELIVERED
    assert m.parts_reported == 2
    assert await orphans(store) == 0
    # A newer orphan for the same ref replaces the older one.
    (other,) = await queue(runtime, acc)
    await lease(store, now + 3)
    await report(services, [(f"{other}.0", 0)], now + 3)
    await report(services, [(f"{other}.0", 66)], now + 4)
    assert await orphans(store) == 1
    await record(services, [ok(other)], now + 5)
    o = await get(store, other)
    assert (o.state, o.status_code) == (State.FAILED, 66)


async def test_report_resolves_unknown(services: Services, runtime: Runtime) -> None:
    store, now = runtime.store, services.clock.now_ms()
    (mid,) = await _sent(services, runtime)
    # UNKNOWN as after a crash: the lease expired before the OK was recorded.
    acc = await account(services, name="beta")
    (lost,) = await queue(runtime, acc)
    await lease(store, now, lease_ms=10)
    await services.messaging.reap(now_ms=now + 100, resend=False)
    assert (await get(store, lost)).state is State.UNKNOWN
    await record(services, [ok(lost)], now + 200)  # late OK: SENT with parts
    await report(services, [(f"{lost}.0", 0), (f"{mid}.0", 0)], now + 300)
    assert (await get(store, lost)).state is State.DELIVERED
    assert (await get(store, mid)).state is State.DELIVERED


async def test_report_for_final_message_changes_nothing(
    services: Services, runtime: Runtime, store: Store
) -> None:
    now = services.clock.now_ms()
    (mid,) = await _sent(services, runtime, parts=2)
    await services.messaging.expire(now_ms=now + 10**10)
    assert (await get(store, mid)).state is State.EXPIRED
    await report(services, [(f"{mid}.0", 0), (f"{mid}.1", 0)], now + 10**10 + 1)
    assert (await get(store, mid)).state is State.EXPIRED


async def test_purge_orphans(services: Services, store: Store) -> None:
    now = services.clock.now_ms()
    await report(services, [("x.0", 0)], now)
    await report(services, [("y.0", 0)], now + 1000)
    purge = services.messaging.purge_orphans
    assert await purge(older_than_ms=now) == 0
    assert await purge(older_than_ms=now + 1) == 1
    assert await orphans(store) == 1
    assert await purge(older_than_ms=now + 10_000) == 1
    assert await orphans(store) == 0


async def test_reports_on_other_lines_do_not_match(
    services: Services, runtime: Runtime, store: Store
) -> None:
    now = services.clock.now_ms()
    (mid,) = await _sent(services, runtime)
    assert await report(services, [(f"{mid}.0", 0)], now, line="smpp") == 0
    assert (await get(store, mid)).state is State.SENT
    assert await orphans(store) == 1


async def test_failed_submit_then_report_is_ignored(services: Services, runtime: Runtime) -> None:
    store, now = runtime.store, services.clock.now_ms()
    acc = await account(services)
    (mid,) = await queue(runtime, acc)
    await lease(store, now)
    await record(services, [SubmitRecord(mid, Event.SUBMIT_FAILED)], now)
    await report(services, [(f"{mid}.0", 0)], now)
    assert (await get(store, mid)).state is State.FAILED


async def test_message_taken_as_one_payload_settles_on_its_one_report(
    services: Services, runtime: Runtime
) -> None:
    """A line may carry a 3-part text as one payload with one ref: one report settles it."""
    store, now = runtime.store, services.clock.now_ms()
    acc = await account(services)
    (mid,) = await queue(runtime, acc, parts=3)
    await lease(store, now)
    await record(services, [ok(mid, 1)], now)
    assert await report(services, [(f"{mid}.0", 0)], now + 1) == 1
    m = await get(store, mid)
    assert (m.state, m.parts, m.parts_ok, m.parts_reported) == (State.DELIVERED, 3, 1, 1)


def _payload(mid: int, ref: str, parts: int) -> SubmitRecord:
    """A long text the line sent as one payload: the one SMSC id on every part."""
    return SubmitRecord(
        mid, Event.SUBMIT_OK, port=0, part_refs=(ref,) * parts, first_ref=7, line="sim"
    )


async def test_one_report_settles_every_part_that_carries_its_ref(
    services: Services, runtime: Runtime, store: Store
) -> None:
    now = services.clock.now_ms()
    acc = await account(services)
    a, b = await queue(runtime, acc, 2, parts=3)
    await lease(store, now)
    await record(services, [_payload(a, "7000001", 3), ok(b, 3)], now)
    assert await report(services, [("7000001", 0)], now + 5) == 3
    m = await get(store, a)
    assert (m.state, m.parts_reported, m.delivered_ms) == (State.DELIVERED, 3, now + 5)
    assert (await get(store, b)).state is State.SENT
    assert await report(services, [("7000001", 0)], now + 6) == 0  # sent again: no change


async def test_a_shared_ref_reported_before_its_submit_settles_every_part(
    services: Services, runtime: Runtime, store: Store
) -> None:
    now = services.clock.now_ms()
    acc = await account(services)
    (mid,) = await queue(runtime, acc, 1, parts=2)
    await lease(store, now)
    assert await report(services, [("7000002", 69)], now) == 0  # kept as an orphan
    await record(services, [_payload(mid, "7000002", 2)], now + 1)
    m = await get(store, mid)
    assert (m.state, m.parts_reported, m.status_code) == (State.FAILED, 2, 69)
    assert await orphans(store) == 0


async def test_a_ref_used_again_for_another_message_reports_one_message(
    services: Services, runtime: Runtime, store: Store
) -> None:
    """A modem's TP-MR wraps at 256: two messages waiting under one ref; a report is one."""
    now = services.clock.now_ms()
    acc = await account(services)
    a, b = await queue(runtime, acc, 2, parts=2)
    await lease(store, now)
    await record(services, [_payload(a, "17", 2), _payload(b, "17", 2)], now)
    assert await report(services, [("17", 0)], now + 5) == 2
    states = sorted([(await get(store, a)).state, (await get(store, b)).state])
    assert states == sorted([State.DELIVERED, State.SENT])
