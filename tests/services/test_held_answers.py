"""The line's answers are written only on rows their worker still holds (issue 15).

The rule (store/submit_writes.py ``HeldBy``) is part of the answer's UPDATE, which returns
the rows it wrote: no read of the holders first. On PostgreSQL the parts go in with the
orphans' take in one statement too (a recorded batch is two statements before its events),
and a lease lost while the answer waits for its row is seen under the row's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, update

from simgate.domain.events import MessageChange
from simgate.domain.messages import Event, State
from simgate.domain.queue import PartReport, ReportHint, SubmitRecord
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.store import Store, submit_writes
from simgate.store.submit_writes import HeldBy, write_submits
from simgate.store.tables import messages
from tests.support.changes import Batches
from tests.support.driver_trace import asyncpg_ran, sqlite_ran

from ..store.util import OWNER, get, lease_of, orphans
from .support import leased


def _ok(mid: int) -> SubmitRecord:
    return SubmitRecord(mid, Event.SUBMIT_OK, port=1, part_refs=(f"{mid}.0",), line="sim")


def _early(mid: int, at: int) -> list[PartReport]:
    """The report of ``mid``'s one part, come before its submit was recorded."""
    hint = ReportHint(message_id=mid, lease_seq=1, part=1, parts=1)
    return [PartReport(line="sim", line_ref=f"{mid}.0", status_code=0, done_ms=at, hint=hint)]


def _pg_only(store: Store) -> None:
    if store.db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has one writer, and no data-modifying CTE")


@contextmanager
def _statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = store.db.engine.sync_engine

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


async def test_the_rule_is_the_same_read_and_written(store: Store, runtime: Runtime) -> None:
    """Every (state, lease owner) against every guard: the rows the guarded UPDATE writes
    are those ``HeldBy.holds`` says, and the others are left as they were."""
    states = (State.SUBMITTING, State.UNKNOWN, State.QUEUED, State.SENT)
    owners = (OWNER, "worker-b", None)
    cells = list(itertools.product(states, owners))
    # Each rule and how many of the cells it takes (SUBMITTING under OWNER; UNKNOWN: any,
    # or under OWNER; an empty owner holds no lease).
    rules = {
        HeldBy(OWNER, any_unknown=True): 4,
        HeldBy(OWNER, any_unknown=False): 2,
        HeldBy("", any_unknown=True): 3,
        HeldBy("", any_unknown=False): 0,
    }
    every = await leased(runtime, len(rules) * len(cells))
    for n, (rule, takes) in enumerate(rules.items()):
        ids = every[n * len(cells) : (n + 1) * len(cells)]
        by_id = dict(zip(ids, cells, strict=True))

        async def arrange(conn: Any, by_id: dict[int, tuple[State, str | None]] = by_id) -> None:
            for mid, (state, lease_owner) in by_id.items():
                await conn.execute(
                    update(messages)
                    .where(messages.c.id == mid)
                    .values(state=int(state), lease_owner=lease_owner)
                )

        await store.db.write(arrange)

        async def guarded(conn: Any, rule: HeldBy = rule, ids: list[int] = ids) -> set[int] | None:
            records = [SubmitRecord(mid, Event.SUBMIT_FAILED) for mid in ids]
            return await write_submits(
                conn, records, target=State.FAILED, now_ms=5_000, held_by=rule
            )

        written = await store.db.write(guarded)
        expected = {mid for mid, (state, lo) in by_id.items() if rule.holds(state, lo)}
        assert written == expected, rule
        assert len(expected) == takes, rule
        for mid, (state, _) in by_id.items():
            row = await get(store, mid)
            assert row.state is (State.FAILED if mid in expected else state), (rule, mid)


async def test_a_recorded_batch_reads_no_holders(
    services: Services, store: Store, runtime: Runtime
) -> None:
    """The guarded UPDATE first, then the parts with the orphans' take: one statement on
    PostgreSQL, an INSERT and a DELETE on SQLite (the UPDATE and the INSERT straight on
    the write connection there, store/driver_sql.py: counted from sqlite3's trace, which
    shows an executemany once per row; on PostgreSQL straight on asyncpg, from its query
    logger)."""
    ids = await leased(runtime, 3)
    at = services.clock.now_ms() + 10
    pg = store.db.engine.dialect.name == "postgresql"
    ran: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        if pg:
            await stack.enter_async_context(asyncpg_ran(store.db, ran))
        else:
            ran = await stack.enter_async_context(sqlite_ran(store.db))
        seen = stack.enter_context(_statements(store))
        await services.messaging.record_submits([_ok(m) for m in ids], owner=OWNER, now_ms=at)
    done = ran
    mine = [s for s in done if "message_parts" in s or s.startswith(("UPDATE", "SELECT id,"))]
    mine += [s for s in done if s.startswith("DELETE FROM orphan_reports")]
    assert len(mine) == (2 if pg else 5), done
    assert mine[0].startswith("UPDATE messages AS t")
    assert "RETURNING" in mine[0]
    if pg:
        assert mine[1].startswith("WITH")
        assert "INSERT INTO message_parts" in mine[1]
        assert "DELETE FROM orphan_reports" in mine[1]
    else:
        assert all(s.startswith("INSERT INTO message_parts") for s in mine[1:4])
        assert mine[4].startswith("DELETE FROM orphan_reports")
    # Neither backend runs them through SQLAlchemy (issue 15: 50-65 µs of CPU each there).
    assert not any(
        s.startswith(("UPDATE messages", "INSERT INTO message_parts", "WITH")) for s in seen
    )
    assert [(await get(store, m)).state for m in ids] == [State.SENT] * 3


async def test_a_lease_lost_while_the_answer_waits_for_its_row_is_not_overwritten(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    """Another process puts the message back in the queue (a reaper's resend policy) and
    holds its row while this worker's answer comes. Read before the write, the row still
    looked held and the answer overwrote the requeue (SENT, with parts, a message another
    worker may lease next); checked in the UPDATE, under the row's lock, the answer finds
    the lease gone and changes nothing."""
    _pg_only(store)
    (mid,) = await leased(runtime)
    at = services.clock.now_ms() + 10
    engine = store.db.engine
    async with engine.connect() as other, engine.connect() as watcher:
        await other.execute(
            update(messages)
            .where(messages.c.id == mid)
            .values(state=int(State.QUEUED), lease_owner=None, lease_until_ms=None)
        )
        recording = asyncio.create_task(
            services.messaging.record_submits([_ok(mid)], owner=OWNER, now_ms=at)
        )
        for _ in range(500):  # until the answer's write waits for the row's lock
            waiting = await watcher.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if waiting.scalar_one():
                break
            await watcher.rollback()
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the answer never waited for the row")
        await other.commit()
        await recording
    assert (await get(store, mid)).state is State.QUEUED
    assert await lease_of(store, mid) == (None, None)
    async with store.db.read() as conn:
        assert await store.messages.parts_of(conn, mid) == []
    assert batches == []


async def test_a_batch_part_held_part_lost_with_reports_that_overtook_it(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    """One answer of the batch is still this worker's, the other's lease went to another
    worker; both came with their reports. The held one is SENT and settled DELIVERED in
    the same unit of work; the other changes nothing and its report waits as an orphan
    (with its hint) for the worker that holds the message now."""
    held, lost = await leased(runtime, 2)

    async def take(conn: Any) -> None:
        await conn.execute(
            update(messages).where(messages.c.id == lost).values(lease_owner="worker-b")
        )

    await store.db.write(take)
    now = services.clock.now_ms()
    await services.messaging.record_submits(
        [_ok(held), _ok(lost)],
        owner=OWNER,
        now_ms=now + 5,
        reports=[*_early(held, now), *_early(lost, now)],
    )
    assert (await get(store, held)).state is State.DELIVERED
    assert (await get(store, lost)).state is State.SUBMITTING
    assert (await lease_of(store, lost))[0] == "worker-b"
    assert await orphans(store) == 1
    assert batches == [
        [
            MessageChange(held, State.SENT, Event.SUBMIT_OK, now + 5),
            MessageChange(held, State.DELIVERED, Event.REPORT_DELIVERED, now + 5),
        ]
    ]
    await services.messaging.record_submits([_ok(lost)], owner="worker-b", now_ms=now + 6)
    row = await get(store, lost)
    assert (row.state, row.parts_reported) == (State.DELIVERED, 1)
    assert await orphans(store) == 0


@pytest.mark.parametrize("kind", ["plain", "ok", "retry", "settled"])
async def test_sqlite_finds_each_answer_by_its_id(store: Store, kind: str) -> None:
    """The JSON rows drive the UPDATE and each finds its row through the id's index: not a
    scan of messages per batch (SQLite plans a row-value IN list as a scan; the guard's OR
    on the state must not tempt it either)."""
    if store.db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's planner")
    sql = submit_writes._sql("sqlite", kind, (State.SENT,), kind in ("ok", "settled"))

    async def plan(conn: Any) -> list[str]:
        rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", (3, 1, OWNER, "[]"))
        return [str(r[3]) for r in rows]

    steps = await store.db.write(plan)
    assert [s.split(" USING ")[0] for s in steps] == ["SCAN v VIRTUAL TABLE INDEX 1:", "SEARCH t"]
    assert steps[1].endswith("(id=?)")


@pytest.mark.parametrize("kind", ["plain", "ok", "retry", "settled"])
async def test_postgresql_plans_for_the_batch_s_own_count(store: Store, kind: str) -> None:
    """The jsonb rows (store/jsonb_rows.py) count for the planner as many as the batch has,
    as the arrays did: for ``jsonb_array_elements`` it guesses 100 whatever it holds, and for
    a batch of a few answers then found a scan of a young messages table cheaper than the
    look-ups by id (EXPLAIN of the one-row batch on 2,000 queued messages: a hash join
    over a sequential scan, where the arrays had an index scan of messages_pkey)."""
    if store.db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's planner")
    sql = submit_writes._sql("postgresql", kind, (State.SENT,), kind in ("ok", "settled"))
    cols = 7 if kind == "settled" else 9
    rows = [[mid, *[None] * (cols - 1)] for mid in (1, 2, 3)]

    async def plan(conn: Any) -> list[str]:
        params = (3, 1, OWNER, json.dumps(rows), len(rows))
        found = await conn.exec_driver_sql(f"EXPLAIN {sql}", params)
        return [str(r[0]) for r in found]

    steps = await store.db.write(plan)
    guesses = [s for s in steps if "Limit" in s or "jsonb_array_elements" in s]
    assert "rows=3 " in guesses[0], steps
