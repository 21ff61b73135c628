"""Group commit (dispatch/group_write.py): items queued during a write share the next one."""

from __future__ import annotations

import asyncio

from simgate.dispatch.group_write import GroupWrite


async def test_items_added_during_a_write_go_together_in_the_next() -> None:
    writes: list[list[int]] = []
    gate = asyncio.Event()

    async def write(items: list[int]) -> None:
        writes.append(items)
        await gate.wait()

    group = GroupWrite(write)
    first = asyncio.ensure_future(group.add(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(group.add(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    assert writes == [[1]]
    assert not first.done()
    gate.set()
    await asyncio.gather(first, *rest)
    assert writes == [[1], [2, 3, 4]]


async def test_every_waiter_of_a_failed_write_sees_its_error_and_the_next_write_goes_on() -> None:
    calls = 0

    async def write(items: list[str]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database is locked")

    group = GroupWrite(write)
    a = asyncio.ensure_future(group.add("a"))
    b = asyncio.ensure_future(group.add("b"))
    results = await asyncio.gather(a, b, return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    await group.add("c")  # a new write
    assert calls == 2
