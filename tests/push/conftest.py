"""Fixtures for the push engine: a runtime with push settings, a test-only format, helpers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from simgate.domain.events import DomainEvent, PortChanged
from simgate.push.base import PlannedPush, PushContext, PushRequest
from simgate.push.sender import PushQueue, PushSender
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.services.outbox import PushOutbox
from simgate.services.pushes import PushView
from simgate.testing.clock import FakeClock
from tests.conftest import make_settings
from tests.support.pg import truncate_pg

# The lease must cover (window / concurrency + 1) * total timeout (push/settings.py).
PUSH_TEST_SETTINGS: dict[str, Any] = {
    "allow_cidrs": ["127.0.0.1/32"],
    "connect_timeout_seconds": 2.0,
    "total_timeout_seconds": 10.0,  # long enough that a hanging receiver stays hung
    "per_endpoint_concurrency": 4,
    "per_endpoint_window": 8,
    "lease_seconds": 60.0,
    "idle_poll_seconds": 0.5,
}


class PortPush:
    """Test-only push format: a PortChanged event on line L becomes a POST to ``urls[L]``.

    A pure event → request function, like a dialect's; the order key is per line and port,
    so several events for one port must arrive in the order they were planned.
    """

    name = "test.port"
    kinds: frozenset[type[DomainEvent]] = frozenset({PortChanged})

    def __init__(self) -> None:
        self.urls: dict[str, str] = {}
        self.headers: dict[str, str] = {"Content-Type": "application/json"}
        self.secret: str | None = (
            "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM="
        )  # "secret-key-for-tests"

    def docs(self, events: Sequence[DomainEvent]) -> set[str]:
        return set()

    def plan(self, events: Sequence[DomainEvent], ctx: PushContext) -> list[PlannedPush]:
        out = []
        for e in events:
            if isinstance(e, PortChanged) and e.line in self.urls:
                body = json.dumps({"line": e.line, "port": e.port, "up": e.up, "at": e.at_ms})
                out.append(
                    PlannedPush(
                        request=PushRequest(
                            "POST",
                            self.urls[e.line],
                            dict(self.headers),
                            body.encode(),
                        ),
                        order_key=f"{e.line}:{e.port}",
                        signing_secret=self.secret,
                        kind="test.port",
                    )
                )
        return out


class PushRig:
    def __init__(self, rt: Runtime, clock: FakeClock, port_push: PortPush) -> None:
        self.rt = rt
        self.clock = clock
        self.port_push = port_push
        assert rt.services is not None
        self.services: Services = rt.services
        self.sender: PushSender | None = None

    async def plan(self, line: str, port: int, up: bool = True, count: int = 1) -> None:
        """Announce ``count`` port events in one transaction (one push each)."""
        events = [PortChanged(line, port, up, self.clock.now_ms()) for _ in range(count)]
        await self.rt.store.db.write(functools.partial(self.rt.changes.publish, changes=events))

    async def start(self, queue: PushQueue | None = None) -> PushSender:
        """Start a sender on the outbox (or on ``queue``, a named fake around it)."""
        sv = self.services
        self.sender = PushSender(
            queue=sv.pushes.queue if queue is None else queue,
            settings=sv.pushes.settings,
            clock=self.clock,
            metrics=sv.metrics,
            guard=sv.pushes.guard,
            wakeup=self.rt.wakeup,
        )
        await self.sender.start()
        return self.sender

    async def pushes(self, state: str | None = None) -> list[PushView]:
        return await self.services.pushes.list(states=[state] if state else [], limit=10_000)

    async def until(
        self,
        check: Callable[[], Awaitable[bool]],
        *,
        step: float = 0.5,
        max_steps: int = 400,
        what: str = "condition",
    ) -> None:
        """Advance fake time in steps (letting real I/O run) until ``check`` holds."""
        for _ in range(max_steps):
            if await check():
                return
            await self.clock.advance(step)
            await asyncio.sleep(0.005)
        raise AssertionError(f"{what} did not happen within {step * max_steps:g} fake seconds")

    async def all_in(self, state: str, n: int) -> bool:
        return len(await self.pushes(state)) == n


@contextlib.asynccontextmanager
async def make_rig(url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[PushRig]:
    if url.startswith("postgresql"):
        await truncate_pg(url)
    settings = make_settings(tmp_path, url, push=PUSH_TEST_SETTINGS)
    rt = Runtime(settings, role="admin", clock=clock)
    await rt.open()
    port_push = PortPush()
    assert rt.services is not None
    assert rt.events is not None
    rt.events.subscribe(
        PushOutbox(store=rt.store, formats=[port_push], clock=clock, wakeup=rt.wakeup)
    )
    r = PushRig(rt, clock, port_push)
    try:
        yield r
    finally:
        if r.sender is not None:
            await r.sender.stop()
        await rt.close()


@pytest.fixture
async def rig(backend: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[PushRig]:
    """On both backends (the outbox and claim contract)."""
    async with make_rig(backend, tmp_path, clock) as r:
        yield r


@pytest.fixture
async def srig(sqlite_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[PushRig]:
    """On SQLite only (sender behaviour, which does not depend on the backend)."""
    async with make_rig(sqlite_url, tmp_path, clock) as r:
        yield r
