"""The outbox's claim and outcomes as one statement each on PostgreSQL (store/push_pg.py),
held to the contract of the portable versions SQLite runs (store/pushes.py): the contract
tests run on both backends, the statement counts and the claim's plan on PostgreSQL."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.pushes import AttemptResult, ClaimedPush
from simgate.services.pushes import PushView
from simgate.store import pushes as outbox
from simgate.store.push_tables import ENDPOINTS_SCANNED
from tests.push.conftest import PushRig, rig

__all__ = ["rig"]  # the push rig of tests/push, on both backends

URL = "http://127.0.0.1:9/hook"
OTHER = "http://127.0.0.1:10/hook"
A, B = "http://127.0.0.1:9", "http://127.0.0.1:10"


async def _claim(
    rig: PushRig, *, limit: int = 100, window: int = 100, busy: Mapping[str, int] | None = None
) -> list[ClaimedPush]:
    now = rig.clock.now_ms()
    return await rig.rt.store.db.write(
        functools.partial(
            outbox.claim,
            owner="w1",
            now_ms=now,
            lease_until_ms=now + 60_000,
            limit=limit,
            window=window,
            busy=busy or {},
        )
    )


async def _record(rig: PushRig, results: list[AttemptResult], owner: str = "w1") -> None:
    await rig.rt.store.db.write(
        functools.partial(outbox.record, results=results, owner=owner, now_ms=rig.clock.now_ms())
    )


async def _rows(rig: PushRig) -> dict[int, PushView]:
    return {r.id: r for r in await rig.pushes()}


async def test_every_outcome_is_written_with_its_attempt(rig: PushRig) -> None:
    rig.port_push.urls["a"] = URL
    for port in range(5):
        await rig.plan("a", port)
    ids = [c.id for c in await _claim(rig)]
    now = rig.clock.now_ms()
    delivered, failed, dead, retry, release = ids
    await _record(
        rig,
        [
            AttemptResult(delivered, A, "delivered", 204),
            AttemptResult(failed, A, "failed", 404, "HTTP 404"),
            AttemptResult(dead, A, "dead", None, "timeout"),
            AttemptResult(retry, A, "retry", 503, "HTTP 503", now + 30_000),
            AttemptResult(release, A, "release"),
        ],
    )
    rows = await _rows(rig)
    got = {
        i: (r.state, r.attempts, r.last_status, r.last_error, r.done_ms, r.in_flight)
        for i, r in rows.items()
    }
    assert got == {
        delivered: ("delivered", 1, 204, None, now, False),
        failed: ("failed", 1, 404, "HTTP 404", now, False),
        dead: ("dead", 1, None, "timeout", now, False),
        retry: ("pending", 1, 503, "HTTP 503", None, False),
        release: ("pending", 0, None, None, None, False),  # given back untouched
    }
    assert rows[retry].next_attempt_ms == now + 30_000
    assert rows[release].next_attempt_ms <= now
    async with rig.rt.store.db.read() as conn:
        logged = {i: await outbox.attempts_of(conn, i) for i in ids}
    assert [(a.outcome, a.status, a.error) for a in logged[retry]] == [("retry", 503, "HTTP 503")]
    assert [a.outcome for a in logged[delivered]] == ["delivered"]
    assert logged[release] == []  # a release was no attempt
    # Only the retried and the released push can be claimed again, once due.
    await rig.clock.advance(31)
    assert sorted(c.id for c in await _claim(rig)) == sorted([retry, release])


async def test_an_outcome_without_the_lease_is_logged_but_not_applied(rig: PushRig) -> None:
    rig.port_push.urls["a"] = URL
    await rig.plan("a", 1)
    (claimed,) = await _claim(rig)
    now = rig.clock.now_ms()
    await _record(
        rig, [AttemptResult(claimed.id, A, "retry", 500, "HTTP 500", now + 5_000)], owner="w2"
    )
    (row,) = (await _rows(rig)).values()
    assert (row.attempts, row.in_flight, row.last_status) == (0, True, None)
    async with rig.rt.store.db.read() as conn:
        assert [a.outcome for a in await outbox.attempts_of(conn, claimed.id)] == ["retry"]


async def test_a_delivery_after_failures_makes_the_endpoints_waiting_pushes_due(
    rig: PushRig,
) -> None:
    rig.port_push.urls["a"] = URL
    rig.port_push.urls["b"] = OTHER
    for port in range(3):
        await rig.plan("a", port)
    await rig.plan("b", 0)
    first = {c.id: c.endpoint for c in await _claim(rig)}
    a1, a2, a3 = sorted(i for i, ep in first.items() if ep == A)
    (b1,) = (i for i, ep in first.items() if ep == B)
    now = rig.clock.now_ms()
    later = now + 600_000
    await _record(
        rig,
        [
            AttemptResult(a1, A, "retry", 503, "HTTP 503", now + 10_000),
            AttemptResult(a2, A, "retry", 503, "HTTP 503", later),
            AttemptResult(a3, A, "retry", 503, "HTTP 503", now + 10_000),
            AttemptResult(b1, B, "retry", 503, "HTTP 503", later),
        ],
    )
    await rig.clock.advance(11)
    assert sorted(c.id for c in await _claim(rig)) == [a1, a3]
    now = rig.clock.now_ms()
    # a1 gets through: the endpoint is back. a3, refused in the same batch, keeps its
    # backoff; a2, waiting out its own, is due now; the other endpoint's push is not.
    await _record(
        rig,
        [
            AttemptResult(a1, A, "delivered", 200),
            AttemptResult(a3, A, "retry", 503, "HTTP 503", now + 900_000),
        ],
    )
    rows = await _rows(rig)
    assert rows[a1].state == "delivered"
    assert rows[a2].next_attempt_ms == now
    assert rows[a3].next_attempt_ms == now + 900_000
    assert rows[b1].next_attempt_ms == later


async def test_a_first_attempts_delivery_moves_no_other_push(rig: PushRig) -> None:
    rig.port_push.urls["a"] = URL
    await rig.plan("a", 1)
    await rig.plan("a", 2)
    one, two = sorted(c.id for c in await _claim(rig))
    later = rig.clock.now_ms() + 600_000
    await _record(rig, [AttemptResult(one, A, "retry", 503, "HTTP 503", later)])
    await rig.plan("a", 3)
    (three,) = [c.id for c in await _claim(rig)]
    await _record(
        rig, [AttemptResult(two, A, "delivered", 200), AttemptResult(three, A, "delivered", 200)]
    )
    assert (await _rows(rig))[one].next_attempt_ms == later


async def test_the_window_counts_what_the_worker_already_holds(rig: PushRig) -> None:
    rig.port_push.urls["a"] = URL
    rig.port_push.urls["b"] = OTHER
    for port in range(4):
        await rig.plan("a", port)
        await rig.plan("b", port)
    # A holds 3 of its 4, B all 4: one more push of A, none of B.
    got = await _claim(rig, window=4, busy={A: 3, B: 4})
    assert [c.endpoint for c in got] == [A]
    assert got[0].id == min(r.id for r in (await _rows(rig)).values() if r.endpoint == A)
    # Without holdings: all of them, in due order (the order the sender starts them in).
    await rig.clock.advance(61)
    again = await _claim(rig, window=4, limit=8)
    assert [c.id for c in again] == sorted(c.id for c in again)
    assert len(again) == 8


@pytest.mark.pg
async def test_claim_and_record_are_one_statement_each(rig: PushRig) -> None:
    db = rig.rt.store.db
    if db.is_sqlite:
        pytest.skip("PostgreSQL's statements")
    rig.port_push.urls["a"] = URL
    for port in range(50):
        await rig.plan("a", port)
    seen: list[str] = []

    def count(*args: object, **_: object) -> None:
        seen.append(str(args[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        claimed = await _claim(rig)
        claims = [s for s in seen if "pushes" in s]
        seen.clear()
        await _record(rig, [AttemptResult(c.id, A, "delivered", 200) for c in claimed])
        records = [s for s in seen if "push" in s]
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert len(claimed) == 50
    assert len(claims) == 1, claims
    assert len(records) == 1, records


# A backlog as the benchmark's: 20,000 pending pushes with a body, one order key each.
_BACKLOG = """
INSERT INTO pushes (uid, endpoint, order_key, kind, method, url, body, state,
    next_attempt_ms, created_ms, since_ms, updated_ms)
SELECT 'msg_' || g, 'http://127.0.0.1:9', 'k:' || g, 'test', 'POST', 'http://127.0.0.1:9/h',
    convert_to(repeat('x', 400), 'UTF8'), 0, 1000, 1000, 1000, 1000
FROM generate_series(1, 20000) AS g
"""


@pytest.mark.pg
async def test_the_claim_reads_the_due_index_in_order_whatever_the_statistics(
    rig: PushRig,
) -> None:
    """Without statistics (a table not analyzed yet; or analyzed while nothing was pending)
    the planner expects a handful of pending rows and costs every plan alike: it read every
    due row through a bitmap, checked each one's order key and sorted them all, on every
    claim of a backlog. The claim reads its candidates in index order instead.

    The rows read are counted from the plan as it ran (EXPLAIN ANALYZE: every node that
    reads ``pushes``, with what its filters dropped). ``pg_stat_get_xact_tuples_*`` of the
    table, counted before, missed an index scan's rows (PostgreSQL counts them on the index):
    it read 0 for a claim whose plan read 2,000."""
    db = rig.rt.store.db
    if db.is_sqlite:
        pytest.skip("PostgreSQL's planner")
    async with db.engine.connect() as conn:
        superuser = await conn.execute(
            text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        )
        if not superuser.scalar_one():
            pytest.skip("forgetting a table's statistics takes a superuser")
        await conn.execute(text("DELETE FROM pg_statistic WHERE starelid = 'pushes'::regclass"))
        await conn.execute(text(_BACKLOG))
        await conn.commit()
    claimed, plan = await _claim_analyzed(rig, now_ms=5000, limit=500, window=1000)
    assert claimed == 500
    # 500 candidates in index order, the 500 chosen found again by primary key for the lease:
    # 1,000 (read today). Every due row through a bitmap is 20,000; with sorting on and
    # without statistics PostgreSQL read 200 million (the order key checked by a scan).
    assert _rows_read(plan, "pushes") <= 2000, plan


def _rows_read(plan: dict[str, Any], table: str) -> int:
    """Rows the nodes of ``plan`` (EXPLAIN ANALYZE, FORMAT JSON) read from ``table``: those
    they passed on and those their filters dropped, over all their loops (PostgreSQL shows
    both per loop)."""
    read = 0
    if plan.get("Relation Name") == table and plan.get("Node Type") != "ModifyTable":
        dropped = sum(
            plan.get(k, 0) for k in ("Rows Removed by Filter", "Rows Removed by Index Recheck")
        )
        read += round((plan.get("Actual Rows", 0) + dropped) * plan.get("Actual Loops", 1))
    return read + sum(_rows_read(p, table) for p in plan.get("Plans", []))


async def _claim_analyzed(
    rig: PushRig, *, now_ms: int, limit: int, window: int
) -> tuple[int, dict[str, Any]]:
    """A claim run and rolled back (the rows it claimed, the planner settings checked to be
    put back after it for the batch's other jobs), then run again under EXPLAIN ANALYZE in a
    transaction rolled back: the rows claimed and the plan of its search as it ran."""
    db = rig.rt.store.db
    ran: list[tuple[str, Any]] = []

    def keep(*args: Any, **_: object) -> None:
        ran.append((str(args[2]), args[3]))  # statement, parameters

    async def settings(conn: AsyncConnection) -> list[str]:
        got = await conn.execute(
            text("SELECT current_setting('enable_sort'), current_setting('jit')")
        )
        return list(got.one())

    async with db.engine.connect() as conn:
        await conn.begin()
        before = await settings(conn)
        event.listen(db.engine.sync_engine, "before_cursor_execute", keep)
        try:
            claimed = await outbox.claim(
                conn, owner="w1", now_ms=now_ms, lease_until_ms=now_ms + 60_000, limit=limit,
                window=window, busy={},
            )  # fmt: skip
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", keep)
        assert await settings(conn) == before
        await conn.rollback()
    (at,) = [i for i, (sql, _) in enumerate(ran) if "ORDER BY" in sql]
    async with db.engine.connect() as conn:
        for sql, params in ran[:at]:
            await conn.exec_driver_sql(sql, tuple(params))
        sql, params = ran[at]
        got = await conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, tuple(params))
        (doc,) = got.scalar_one()
        await conn.rollback()
    return len(claimed), doc["Plan"]


async def test_a_claim_reads_nothing_of_an_endpoint_whose_window_is_full(rig: PushRig) -> None:
    """Issue 15 debts: with A's window full, the claim walked every pending row of A in due
    order (``ix_pushes_due``) only to skip it (~10 ms at 10,000 pending). It goes endpoint
    by endpoint instead, leaving A out: the plan of what it ran never walks the due index."""
    now = rig.clock.now_ms()
    await _insert(rig, A, 2000, now_ms=now)
    await _insert(rig, B, 10, now_ms=now + 1)
    claimed, plan = await _claim_explained(rig, now_ms=now + 1, busy={A: 4})
    assert [c.endpoint for c in claimed] == [B] * 4  # B's window; none of A's
    assert "ix_pushes_endpoint_due" in plan, plan
    assert "ix_pushes_due" not in plan, plan


async def test_past_so_many_pending_endpoints_the_claim_walks_the_due_index(
    rig: PushRig,
) -> None:
    """Endpoint by endpoint costs a seek and a read per pending endpoint: with thousands
    waiting, more than walking past the full endpoint's rows (bench/push_claim.py). Past
    ``ENDPOINTS_SCANNED`` pending endpoints the claim walks the due index; it takes the same
    rows either way."""
    now = rig.clock.now_ms()
    await _insert(rig, A, 20, now_ms=now)
    many = [f"http://127.0.0.1:{1000 + i}" for i in range(ENDPOINTS_SCANNED)]
    for i, endpoint in enumerate(many):  # A and these: one more than scanned one by one
        await _insert(rig, endpoint, 1, now_ms=now + 1 + i)
    claimed, plan = await _claim_explained(rig, now_ms=now + 100, busy={A: 4})
    assert [c.endpoint for c in claimed] == many[:10]  # the earliest due, none of A's
    assert "ix_pushes_due" in plan, plan
    assert "ix_pushes_endpoint_due" not in plan, plan


async def test_the_order_key_check_keeps_its_own_index_without_statistics(
    rig: PushRig,
) -> None:
    """Without statistics PostgreSQL costed ``ix_pushes_endpoint_due`` like ``ix_pushes_order``
    for "an earlier push of this key still pending?", and read the endpoint's pending rows
    for every candidate: 4 s per claim of a 10,000 backlog with 10 pushes per key."""
    now = rig.clock.now_ms()
    await _insert(rig, A, 200, now_ms=now, per_key=10)
    claimed, plan = await _claim_explained(rig, now_ms=now, busy={})
    assert len(claimed) == 4  # one window of heads of keys
    assert "ix_pushes_order" in plan, plan
    assert "ix_pushes_endpoint_due" not in plan, plan


async def _insert(rig: PushRig, endpoint: str, n: int, *, now_ms: int, per_key: int = 0) -> None:
    planned = [
        outbox.NewPush(
            endpoint, f"k{i // per_key}" if per_key else None, "test", "POST",
            endpoint + "/h", {}, b"{}", None,
        )
        for i in range(n)
    ]  # fmt: skip
    await rig.rt.store.db.write(lambda conn: outbox.insert_planned(conn, planned, now_ms=now_ms))


async def _claim_explained(
    rig: PushRig, *, now_ms: int, busy: Mapping[str, int]
) -> tuple[list[ClaimedPush], str]:
    """A claim (window 4, limit 10), and the plan of its search for candidates, explained as
    it ran: on PostgreSQL after the planner settings the claim sets first, in a transaction
    of its own."""
    db = rig.rt.store.db
    ran: list[tuple[str, Any]] = []

    def keep(*args: Any, **_: object) -> None:
        ran.append((str(args[2]), args[3]))  # statement, parameters

    async def claim(conn: AsyncConnection) -> list[ClaimedPush]:
        event.listen(db.engine.sync_engine, "before_cursor_execute", keep)
        try:
            return await outbox.claim(
                conn, owner="w1", now_ms=now_ms, lease_until_ms=now_ms + 60_000, limit=10,
                window=4, busy=busy,
            )  # fmt: skip
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", keep)

    claimed = await db.write(claim)
    (at,) = [i for i, (sql, _) in enumerate(ran) if "ORDER BY" in sql]
    explain = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
    async with db.engine.connect() as conn:
        for sql, params in ran[:at]:
            await conn.exec_driver_sql(sql, tuple(params))
        sql, params = ran[at]
        steps = await conn.exec_driver_sql(explain + sql, tuple(params))
        plan = "\n".join(str(r[-1]) for r in steps)
        await conn.rollback()
    return claimed, plan
