"""Requests from ``simgate run`` to its worker child (cli/child_channel.py).

Real socket pairs; the child's side runs in this event loop and stands for the child process
(tests/process/test_worker_child_ports.py runs the real one).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from simgate.cli.child_channel import ChildAnswers, ChildChannel, ChildGone


def _child(channel: ChildChannel, handler: Any) -> ChildAnswers:
    fd = channel.new_pair().detach()  # the child's copy, as inherited (here: ours)
    answers = ChildAnswers(fd, handler)
    answers.start()
    return answers


async def test_each_request_gets_its_own_answer_and_a_slow_one_holds_up_no_other() -> None:
    release = asyncio.Event()

    async def handler(request: dict[str, Any]) -> dict[str, Any]:
        if request["op"] == "slow":  # a USSD waiting for the network
            await release.wait()
        return {"echo": request["n"]}

    channel = ChildChannel()
    answers = _child(channel, handler)
    slow = asyncio.ensure_future(channel.ask({"op": "slow", "n": 0}, 5))
    fast = await asyncio.gather(*(channel.ask({"op": "fast", "n": n}, 5) for n in range(1, 6)))
    assert [a["echo"] for a in fast] == [1, 2, 3, 4, 5]
    assert not slow.done()
    release.set()
    assert (await slow)["echo"] == 0
    await answers.stop()
    await channel.close()


async def test_no_child_or_a_child_that_ended_fails_at_once_not_at_the_timeout() -> None:
    channel = ChildChannel()
    with pytest.raises(ChildGone):
        await channel.ask({"op": "x"}, 30)
    never = asyncio.Event()

    async def hangs(request: dict[str, Any]) -> dict[str, Any]:
        await never.wait()
        return {}

    answers = _child(channel, hangs)
    waiting = asyncio.ensure_future(channel.ask({"op": "x"}, 30))
    await asyncio.sleep(0.05)
    await answers.stop()  # the child ends with a request in flight
    with pytest.raises(ChildGone):
        await asyncio.wait_for(waiting, 5)  # long before the 30 s timeout
    with pytest.raises(ChildGone):
        await channel.ask({"op": "x"}, 30)  # until the next child starts
    answers = _child(channel, lambda r: asyncio.sleep(0, {"ok": True}))
    assert await channel.ask({"op": "x"}, 5) == {"ok": True}
    await answers.stop()
    await channel.close()


async def test_a_failing_request_is_answered_with_its_error() -> None:
    async def broken(request: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("no such port")

    channel = ChildChannel()
    answers = _child(channel, broken)
    assert await channel.ask({"op": "x"}, 5) == {"error": "failed", "text": "no such port"}
    await answers.stop()
    await channel.close()


async def test_a_late_answer_is_not_taken_for_the_next_one() -> None:
    first = asyncio.Event()

    async def late_first(request: dict[str, Any]) -> dict[str, Any]:
        if request["n"] == 1:
            await first.wait()
        return {"n": request["n"]}

    channel = ChildChannel()
    answers = _child(channel, late_first)
    with pytest.raises(TimeoutError):
        await channel.ask({"n": 1}, 0.1)
    first.set()  # its answer comes now, to nobody
    await asyncio.sleep(0.05)
    assert await channel.ask({"n": 2}, 5) == {"n": 2}
    await answers.stop()
    await channel.close()
