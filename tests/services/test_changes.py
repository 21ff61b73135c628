"""The change seam: subscribers get each unit of work's changes in order, inside it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.events import Change, InboundStored, PortChanged
from simgate.services.changes import Publish, Subscribers

CONN = cast(AsyncConnection, object())  # the seam only hands the connection on


async def test_each_subscriber_gets_the_batch_in_order() -> None:
    subs = Subscribers()
    seen: list[tuple[str, AsyncConnection, list[Change]]] = []

    def hook(name: str) -> Publish:
        async def receive(conn: AsyncConnection, changes: Sequence[Change]) -> None:
            seen.append((name, conn, list(changes)))

        return receive

    subs.subscribe(hook("a"))
    subs.subscribe(hook("b"))
    batch: list[Change] = [PortChanged("sim", 1, True, 5), InboundStored(7, 5)]
    await subs.publish(CONN, batch)
    assert seen == [("a", CONN, batch), ("b", CONN, batch)]


async def test_an_empty_batch_reaches_nobody_and_clear_unsubscribes() -> None:
    subs = Subscribers()
    calls = 0

    async def count(conn: AsyncConnection, changes: Sequence[Change]) -> None:
        nonlocal calls
        calls += 1

    subs.subscribe(count)
    await subs.publish(CONN, [])
    assert calls == 0
    subs.clear()
    await subs.publish(CONN, [InboundStored(1, 1)])
    assert calls == 0


async def test_a_subscriber_error_reaches_the_caller() -> None:
    """So the caller's unit of work rolls back (tests/store/test_housekeeping.py shows it)."""
    subs = Subscribers()

    async def broken(conn: AsyncConnection, changes: Sequence[Change]) -> None:
        raise RuntimeError("outbox full")

    subs.subscribe(broken)
    with pytest.raises(RuntimeError, match="outbox full"):
        await subs.publish(CONN, [InboundStored(1, 1)])
