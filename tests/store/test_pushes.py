"""The outbox rows and the claim contract (store/pushes.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import functools

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.events import PortChanged
from simgate.domain.pushes import AttemptResult
from simgate.store import pushes as outbox
from simgate.store.push_tables import pushes
from tests.push.conftest import PushRig, rig
from tests.support.driver_trace import sqlite_ran, through_sqlalchemy

__all__ = ["rig"]  # the push rig of tests/push, on both backends

URL = "http://127.0.0.1:9/hook"
OTHER = "http://127.0.0.1:10/hook"


async def _count(rig: PushRig) -> int:
    async with rig.rt.store.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(pushes))).scalar_one())


async def _claim(rig: PushRig, owner: str, *, limit: int = 100, window: int = 100) -> list[int]:
    now = rig.clock.now_ms()
    got = await rig.rt.store.db.write(
        functools.partial(
            outbox.claim,
            owner=owner,
            now_ms=now,
            lease_until_ms=now + 60_000,
            limit=limit,
            window=window,
            busy={},
        )
    )
    return [c.id for c in got]


async def test_event_becomes_a_push_row_in_the_same_transaction(rig: PushRig) -> None:
    rig.port_push.urls["a"] = URL
    await rig.plan("a", 1, count=3)
    rows = await rig.pushes()
    assert len(rows) == 3
    assert {r.state for r in rows} == {"pending"}
    assert {r.endpoint for r in rows} == {"http://127.0.0.1:9"}
    assert {r.order_key for r in rows} == {"a:1"}
    assert len({r.uid for r in rows}) == 3
    assert all(r.uid.startswith("msg_") and r.signed for r in rows)
    assert rows[0].body is not None
    assert b'"port": 1' in rows[0].body

    # A change that rolls back leaves no push behind.
    store = rig.rt.store

    async def failing(conn: AsyncConnection) -> None:
        await rig.rt.changes.publish(conn, [PortChanged("a", 2, True, rig.clock.now_ms())])
        raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError):
        await store.db.write(failing)
    assert await _count(rig) == 3


async def test_events_without_subscribers_plan_nothing(rig: PushRig) -> None:
    await rig.plan("nobody-listens", 1, count=2)
    assert await _count(rig) == 0


async def test_a_claimed_push_is_not_claimed_again_until_its_lease_expires(rig: PushRig) -> None:
    rig.port_push.urls["a"] = URL
    await rig.plan("a", 1)
    await rig.plan("a", 2)
    first = await _claim(rig, "w1")
    assert len(first) == 2
    assert await _claim(rig, "w2") == []
    await rig.clock.advance(61)
    assert sorted(await _claim(rig, "w2")) == sorted(first)


async def test_only_the_head_of_an_order_key_is_claimable(rig: PushRig) -> None:
    rig.port_push.urls["a"] = URL
    await rig.plan("a", 1, count=3)  # one order key, three pushes
    await rig.plan("a", 2)  # another key
    head = await _claim(rig, "w1")
    rows = {r.id: r for r in await rig.pushes()}
    assert sorted(rows[i].order_key or "" for i in head) == ["a:1", "a:2"]
    a1 = min(i for i in rows if rows[i].order_key == "a:1")
    assert a1 in head
    # Until the head is settled, its successors wait (even when its lease expires).
    await rig.clock.advance(61)
    assert sorted(await _claim(rig, "w2")) == sorted(head)
    # A retry scheduled later also holds the queue of that key.
    now = rig.clock.now_ms()
    await rig.rt.store.db.write(
        functools.partial(
            outbox.record,
            results=[AttemptResult(a1, "x", "retry", 503, "HTTP 503", now + 30_000)],
            owner="w2",
            now_ms=now,
        )
    )
    assert await _claim(rig, "w3") == []
    await rig.rt.store.db.write(
        functools.partial(
            outbox.record,
            results=[AttemptResult(a1, "x", "delivered", 200)],
            owner="w3",
            now_ms=now,
        )
    )
    nxt = await _claim(rig, "w3")
    assert len(nxt) == 1
    assert rows[nxt[0]].order_key == "a:1"
    assert nxt[0] > a1


async def _record(
    rig: PushRig, owner: str, results: list[AttemptResult], *, lease: bool = True
) -> list[int]:
    """``record`` as the sender calls it: with a lease for the next push of each ended key."""
    now = rig.clock.now_ms()
    got = await rig.rt.store.db.write(
        functools.partial(
            outbox.record,
            results=results,
            owner=owner,
            now_ms=now,
            lease_until_ms=now + 60_000 if lease else None,
        )
    )
    return [c.id for c in got]


async def test_recording_an_ended_push_leases_the_next_of_its_key(rig: PushRig) -> None:
    """The ordered lanes' claim (issue 15): the transaction that records a key's push as
    ended (delivered, failed, dead) leases that key's next push, when due and free, to the
    same worker; a retry or a release holds the key, and nothing is leased without a lease
    time (a stopping sender)."""
    rig.port_push.urls["a"] = URL
    await rig.plan("a", 1, count=4)  # one order key, four pushes
    await rig.plan("a", 2)  # another key, one push
    rows = {r.id: r for r in await rig.pushes()}
    p1, p2, p3, p4 = sorted(i for i in rows if rows[i].order_key == "a:1")
    (q1,) = [i for i in rows if rows[i].order_key == "a:2"]
    assert sorted(await _claim(rig, "w1")) == [p1, q1]

    delivered = [AttemptResult(p1, "x", "delivered", 200), AttemptResult(q1, "x", "delivered")]
    assert await _record(rig, "w1", delivered) == [p2]  # a:2 has no next
    assert await _claim(rig, "w2") == []  # p2 is w1's, p3 waits for it
    pending = {r.id: r for r in await rig.pushes("pending")}
    assert pending[p2].in_flight
    assert not pending[p3].in_flight

    # A retry keeps the key's place: nothing carries on, and p2 waits out its backoff.
    now = rig.clock.now_ms()
    retry = AttemptResult(p2, "x", "retry", 503, "HTTP 503", now + 10_000)
    assert await _record(rig, "w1", [retry]) == []
    assert await _claim(rig, "w2") == []
    await rig.clock.advance(11)
    assert await _claim(rig, "w2") == [p2]
    # A permanent failure ends the push: the key carries on with p3.
    assert await _record(rig, "w2", [AttemptResult(p2, "x", "failed", 404, "HTTP 404")]) == [p3]
    # Without a lease time (the sender stops), the key does not carry on.
    assert await _record(rig, "w2", [AttemptResult(p3, "x", "delivered", 200)], lease=False) == []
    assert await _claim(rig, "w3") == [p4]


async def test_the_next_of_a_key_someone_else_holds_is_not_leased(rig: PushRig) -> None:
    """Another worker's lease on the next push (taken after the one before it expired)
    stands: a late delivery of the one before carries nothing on."""
    rig.port_push.urls["a"] = URL
    await rig.plan("a", 1, count=2)
    p1, p2 = sorted(r.id for r in await rig.pushes())
    assert await _claim(rig, "w1") == [p1]
    await rig.clock.advance(61)  # w1's lease expires; w2 sends p1 and carries on to p2
    assert await _claim(rig, "w2") == [p1]
    assert await _record(rig, "w2", [AttemptResult(p1, "x", "delivered", 200)]) == [p2]
    # w1's late delivery of p1 finds p2 w2's.
    assert await _record(rig, "w1", [AttemptResult(p1, "x", "delivered", 200)]) == []
    (row,) = [r for r in await rig.pushes("pending")]
    assert row.id == p2
    assert row.in_flight


async def test_per_endpoint_window_limits_a_claim(rig: PushRig) -> None:
    rig.port_push.urls["a"] = URL
    rig.port_push.urls["b"] = OTHER
    for port in range(6):
        await rig.plan("a", port)
        await rig.plan("b", port)
    got = await _claim(rig, "w1", window=2)
    rows = {r.id: r for r in await rig.pushes()}
    assert sorted(rows[i].endpoint for i in got) == [
        "http://127.0.0.1:10",
        "http://127.0.0.1:10",
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
    ]


async def test_outcomes_of_a_lost_lease_change_nothing_but_a_delivery(rig: PushRig) -> None:
    rig.port_push.urls["a"] = URL
    await rig.plan("a", 1)
    await rig.plan("a", 2)
    ids = await _claim(rig, "w1")
    now = rig.clock.now_ms()
    results = [
        AttemptResult(ids[0], "x", "failed", 404, "HTTP 404"),
        AttemptResult(ids[1], "x", "delivered", 204),
    ]
    await rig.rt.store.db.write(
        functools.partial(outbox.record, results=results, owner="someone-else", now_ms=now)
    )
    states = {r.id: r.state for r in await rig.pushes()}
    assert states == {ids[0]: "pending", ids[1]: "delivered"}


async def test_concurrent_claims_never_share_a_push(rig: PushRig) -> None:
    """Claimers in separate, overlapping transactions (FOR UPDATE SKIP LOCKED on PostgreSQL;
    SQLite serialises writers) never lease the same push twice."""
    rig.port_push.urls["a"] = URL
    for port in range(40):
        await rig.plan("a", port, count=2)
    db = rig.rt.store.db
    overlap = asyncio.Barrier(4) if not db.is_sqlite else None

    async def claimer(owner: str) -> list[int]:
        now = rig.clock.now_ms()
        async with db.engine.begin() as conn:
            got = await outbox.claim(
                conn,
                owner=owner,
                now_ms=now,
                lease_until_ms=now + 60_000,
                limit=7,
                window=100,
                busy={},
            )
            if overlap is not None:
                await overlap.wait()  # all four hold their row locks at the same time
        return [c.id for c in got]

    seen: list[int] = []
    for _ in range(10):
        rounds = await asyncio.gather(*(claimer(f"w{i}") for i in range(4)))
        seen.extend(i for r in rounds for i in r)
        if not any(rounds):
            break
    assert len(seen) == len(set(seen))
    assert len(seen) == 40  # one head per order key, each claimed exactly once


async def test_pushes_with_subjects_are_stored_in_a_few_statements(rig: PushRig) -> None:
    """The outbox runs in the transaction of every state change: linking 300 pushes to their
    records costs two statements, not one per push (issue 19)."""
    db = rig.rt.store.db
    planned = [
        outbox.NewPush(
            endpoint="http://h:80", order_key=f"msg:{i}", kind="k", method="GET",
            url="http://h/", headers={}, body=None, signing_secret=None, account_id=1,
            subjects=(i, 10_000 + i),
        )
        for i in range(300)
    ]  # fmt: skip
    seen: list[str] = []

    def count(*args: object, **_: object) -> None:
        seen.append(str(args[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        await db.write(functools.partial(outbox.insert_planned, planned=planned, now_ms=1))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    inserts = [s for s in seen if s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) <= 4, inserts[:3]
    async with db.read() as conn:
        for i in (0, 299):
            (pid,) = await outbox.ids_about(conn, i)
            assert await outbox.ids_about(conn, 10_000 + i) == [pid]
            row = await outbox.get(conn, str(pid))
            assert row is not None
            assert (row.order_key, row.account_id) == (f"msg:{i}", 1)


async def test_recording_runs_straight_on_sqlite_s_write_connection(rig: PushRig) -> None:
    """On a SQLite file a recorded batch's statements (the recovered check, outcomes, attempt
    log, the next of each key) run on the write connection's cursor (store/driver_sql.py),
    none through SQLAlchemy's execution path (~50 µs of the loop's CPU each, issue 15: the
    push bench's 1-per-key row), and the next of the key still comes back as a claim."""
    db = rig.rt.store.db
    if not db.is_sqlite:
        pytest.skip("SQLite's write connection; PostgreSQL runs record in push_pg")
    rig.port_push.urls["a"] = URL
    await rig.plan("a", 1, count=2)
    first, second = sorted(r.id for r in await rig.pushes())
    assert await _claim(rig, "w1") == [first]
    async with sqlite_ran(db) as ran:
        with through_sqlalchemy(db) as sent:
            assert await _record(rig, "w1", [AttemptResult(first, "x", "delivered", 200)]) == [
                second
            ]
    verbs = [s.split()[0].upper() for s in ran if "PUSH" in s.upper()]
    assert verbs == ["UPDATE", "UPDATE", "INSERT", "UPDATE"], ran  # recovered, outcome, log, next
    assert not [s for s in sent if "PUSH" in s.upper()], sent
