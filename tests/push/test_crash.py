"""SIGKILL of a real ``simgate run`` while pushes are pending and in flight (issue #3).

No dialect push is configured in this rig, so the pushes come from the testing-only
``[push] test_planner_url`` format (testing/echo_push.py), which the real process loads as it
would a dialect's. The receiver accepts the first 10 pushes and then holds every request
without answering, so when the process is killed 10 pushes are delivered and recorded, a few
are in flight (sent, never answered) and the rest are pending. After a restart every push must
arrive, and only those that were in flight may arrive twice.
"""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from simgate.domain.events import PortChanged
from simgate.runtime import Runtime
from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port, write_config
from simgate.testing.push_receiver import Answer, PushReceiver, Received

pytestmark = pytest.mark.slow

PUSHES = 40
ACCEPT_FIRST = 10
CONCURRENCY = 4


async def _eventually(check: Callable[[], Awaitable[bool]], what: str, within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(0.05)


async def test_sigkill_with_pushes_in_flight_delivers_every_push(tmp_path: Path) -> None:
    release = asyncio.Event()
    seen = 0

    async def behaviour(_: Received) -> Answer:
        nonlocal seen
        seen += 1
        if seen > ACCEPT_FIRST:
            await release.wait()  # in flight: sent, never answered before the kill
        return Answer(204)

    receiver = PushReceiver(behaviour)
    await receiver.start()
    config = write_config(
        tmp_path / "simgate.toml",
        {
            "data_dir": str(tmp_path / "data"),
            "master_key": "test-master-key-0123456789",
            "demo": {"create": False},
            "push": {
                "test_planner_url": receiver.url + "/events",
                "test_planner_secret": "whsec_c2VjcmV0",
                "allow_cidrs": ["127.0.0.1/32"],
                "connect_timeout_seconds": 0.5,
                "total_timeout_seconds": 1.0,
                "lease_seconds": 3.0,
                "per_endpoint_concurrency": CONCURRENCY,
                "per_endpoint_window": CONCURRENCY,
                "retry_base_seconds": 0.2,
                "idle_poll_seconds": 0.05,
            },
        },
    )
    # The format's events come from this process, through the real outbox.
    local = Runtime(load_settings(config), role="admin")
    services = await local.open()
    store = local.store
    events = [PortChanged("sim", port, True, 0) for port in range(PUSHES)]
    await store.db.write(functools.partial(local.changes.publish, changes=events))
    planned = {p.uid for p in await services.pushes.list(limit=1000)}
    assert len(planned) == PUSHES

    async def delivered() -> set[str]:
        return {p.uid for p in await services.pushes.list(states=["delivered"], limit=1000)}

    # One process: the kill must hit the push sender, which runs in the worker (in `run`'s
    # default mode a child the kernel stops gracefully when its parent is killed).
    role = ["run", "--one-process"]
    first = SimgateProcess(role, workdir=tmp_path, config=config, port=free_port(), name="a")
    second = SimgateProcess(role, workdir=tmp_path, config=config, port=free_port(), name="b")
    try:
        first.start()

        async def mid_flight() -> bool:
            first_alive = first.poll() is None
            assert first_alive, first.stderr()[-2000:]
            hanging = len(receiver.requests) - ACCEPT_FIRST
            return len(await delivered()) == ACCEPT_FIRST and hanging >= CONCURRENCY

        await _eventually(mid_flight, "10 delivered and a window in flight", 30)
        first.kill()
        in_flight = {r.headers["webhook-id"] for r in receiver.requests[ACCEPT_FIRST:]}
        before = set(receiver.ids())
        assert len(in_flight) >= CONCURRENCY  # (a hung request may time out and be retried)

        release.set()  # the held requests now answer a dead client
        second.start()

        async def all_delivered() -> bool:
            assert second.poll() is None, second.stderr()[-2000:]
            return len(await delivered()) == PUSHES

        await _eventually(all_delivered, "every push delivered after the restart", 30)
    finally:
        first.kill()
        second.kill()
        await local.close()
        await receiver.stop()

    counts = collections.Counter(receiver.ids())
    assert set(counts) == planned, "a push was lost"
    twice = {uid for uid, n in counts.items() if n > 1}
    assert twice <= in_flight, "a push not in flight at the kill arrived twice"
    assert twice == in_flight  # unanswered, so they had to be sent again
    assert all(counts[uid] == 1 for uid in planned - before)  # pending at the kill: once
