"""bench/common.py: ``wait_state`` and the mark it moves instead of counting the table."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence

import pytest
from bench.common import Settled, wait_state
from bench.http_send import process_cpu_s
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.messages import State
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.store.tables import messages
from tests.store.util import account, queue


async def set_state(
    runtime: Runtime, ids: Sequence[int], state: State, *, at_ms: int | None = None
) -> None:
    """Rows to ``state``, written at ``at_ms`` (``updated_ms``; the fake clock's when None)."""
    when = runtime.clock.now_ms() if at_ms is None else at_ms

    async def write(conn: AsyncConnection) -> None:
        await conn.execute(
            update(messages).where(messages.c.id.in_(ids)).values(state=int(state), updated_ms=when)
        )

    await runtime.store.db.write(write)


async def advance(runtime: Runtime, settled: Settled) -> int:
    async with runtime.store.db.read() as conn:
        return await settled.advance(conn)


async def test_the_mark_counts_the_settled_prefix(services: Services, runtime: Runtime) -> None:
    ids = await queue(runtime, await account(services), 6)
    settled = Settled(State.DELIVERED)
    assert await advance(runtime, settled) == 0
    await set_state(runtime, [ids[0], ids[1], ids[3]], State.DELIVERED)
    assert await advance(runtime, settled) == 2  # stops at ids[2]: ids[3] waits for the mark
    assert settled.mark == ids[1]
    await set_state(runtime, [ids[2]], State.DELIVERED)
    assert await advance(runtime, settled) == 4
    await set_state(runtime, [ids[4]], State.FAILED)  # final, but not the state awaited
    await set_state(runtime, [ids[5]], State.DELIVERED)
    assert await advance(runtime, settled) == 4
    await set_state(runtime, [ids[4]], State.DELIVERED)
    assert await advance(runtime, settled) == 6
    assert settled.mark == ids[5]
    assert await advance(runtime, settled) == 6  # nothing new: nothing counted twice


async def test_the_mark_keeps_the_last_write_it_passed(
    services: Services, runtime: Runtime
) -> None:
    ids = await queue(runtime, await account(services), 3)
    settled = Settled(State.DELIVERED)
    await set_state(runtime, [ids[0]], State.DELIVERED, at_ms=5_000)
    await set_state(runtime, [ids[2]], State.DELIVERED, at_ms=9_000)  # not passed yet
    await advance(runtime, settled)
    assert settled.last_ms == 5_000
    await set_state(runtime, [ids[1]], State.DELIVERED, at_ms=7_000)
    await advance(runtime, settled)
    assert settled.last_ms == 9_000


async def test_wait_state_returns_once_all_are_there(services: Services, runtime: Runtime) -> None:
    ids = await queue(runtime, await account(services), 3)
    await set_state(runtime, ids[:2], State.DELIVERED)
    with pytest.raises(TimeoutError, match="2/3 DELIVERED"):
        await wait_state(runtime.store, State.DELIVERED, 3, limit_s=0)
    await set_state(runtime, ids[2:], State.DELIVERED)
    assert await wait_state(runtime.store, State.DELIVERED, 3, limit_s=0) >= 0


async def test_wait_state_ends_at_the_last_write_not_at_a_poll(
    services: Services, runtime: Runtime
) -> None:
    """The time is the rows' own (here one written a minute after the call), not the poll's."""
    ids = await queue(runtime, await account(services), 2)
    later = time.time_ns() // 1_000_000 + 60_000
    await set_state(runtime, ids[:1], State.DELIVERED)
    await set_state(runtime, ids[1:], State.DELIVERED, at_ms=later)
    seconds = await wait_state(runtime.store, State.DELIVERED, 2, limit_s=0)
    assert 50 < seconds <= 60


async def test_wait_state_counts_when_the_table_holds_more(
    services: Services, runtime: Runtime
) -> None:
    """Two of four awaited, the first row not among them: the mark would say 0, a count 2."""
    ids = await queue(runtime, await account(services), 4)
    await set_state(runtime, [ids[1], ids[3]], State.DELIVERED)
    assert await wait_state(runtime.store, State.DELIVERED, 2, limit_s=0) >= 0
    with pytest.raises(TimeoutError, match="2/3 DELIVERED"):
        await wait_state(runtime.store, State.DELIVERED, 3, limit_s=0)


async def test_wait_state_refuses_a_state_rows_leave(runtime: Runtime) -> None:
    with pytest.raises(ValueError, match="SENT is not final"):
        await wait_state(runtime.store, State.SENT, 1, limit_s=0)


def test_process_cpu_is_read_from_proc() -> None:
    mine = process_cpu_s(os.getpid())
    assert mine >= 0.0
    assert math.isnan(process_cpu_s(2**22 + 1))  # above Linux's largest pid: no such process
