"""gather_eager: results in order, first steps at once, waiting coroutines go on in Tasks."""

from __future__ import annotations

import asyncio

import pytest

from simgate.dispatch.eager import gather_eager


async def test_results_in_order_whether_a_coroutine_waits_or_not() -> None:
    started: list[int] = []
    gate = asyncio.Event()

    async def job(i: int) -> int:
        started.append(i)
        if i % 2:
            await gate.wait()  # waits for a future
            await asyncio.sleep(0)  # and a bare yield
        return i * 10

    run = asyncio.ensure_future(gather_eager(job(i) for i in range(6)))
    await asyncio.sleep(0)
    assert started == [0, 1, 2, 3, 4, 5]  # every first step ran, in order
    assert not run.done()
    gate.set()
    assert await asyncio.wait_for(run, 1) == [0, 10, 20, 30, 40, 50]


async def test_an_exception_after_a_wait_reaches_the_caller() -> None:
    async def fails() -> int:
        await asyncio.sleep(0)
        raise ValueError("line bug")

    async def fine() -> int:
        return 1

    with pytest.raises(ValueError, match="line bug"):
        await gather_eager([fine(), fails()])


@pytest.mark.parametrize("turns", [0, 2], ids=["before-its-task-ran", "while-it-waits"])
async def test_a_cancel_ends_the_waiting_coroutine(turns: int) -> None:
    """A cancel while it waits is thrown into it (as with gather); one that comes before its
    Task ran closes it at once: either way its cleanup runs now."""
    seen: list[str] = []
    never = asyncio.Event()

    async def waits() -> int:
        try:
            await never.wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            seen.append("cleaned up")
        return 0

    run = asyncio.ensure_future(gather_eager([waits()]))
    await asyncio.sleep(0)  # gather_eager took the first step and waits in gather
    for _ in range(turns):
        await asyncio.sleep(0)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await asyncio.sleep(0)
    assert seen == (["cancelled", "cleaned up"] if turns else ["cleaned up"])


async def test_a_thrown_exception_the_coroutine_handles_lets_it_go_on() -> None:
    async def shrugs() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "handled"
        return "slept"

    async def main() -> list[str]:
        return await gather_eager([shrugs()])

    run = asyncio.ensure_future(main())
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # and its inner Task is waiting
    # Cancel the inner task only: the coroutine handles it and returns.
    (inner,) = [t for t in asyncio.all_tasks() if t is not run and t is not asyncio.current_task()]
    inner.cancel()
    assert await asyncio.wait_for(run, 1) == ["handled"]
