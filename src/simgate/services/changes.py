"""The seam through which services hand on what a unit of work changed.

Every service that changes state records its changes (:mod:`simgate.domain.events`) by
calling one :data:`Publish` inside the same ``db.write`` job as the change, so whatever
subscribes (the push outbox) writes its rows in that transaction: a change never commits
without the pushes it owes, and a subscriber's error rolls the change back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.events import Change

Publish = Callable[[AsyncConnection, Sequence[Change]], Awaitable[None]]


class Subscribers:
    """Hands changes, as they are, to each subscriber in order (the runtime subscribes the
    event bus; tests and benchmarks may subscribe hooks of their own or clear them)."""

    def __init__(self) -> None:
        self._hooks: list[Publish] = []

    def subscribe(self, hook: Publish) -> None:
        self._hooks.append(hook)

    def clear(self) -> None:
        self._hooks.clear()

    async def publish(self, conn: AsyncConnection, changes: Sequence[Change]) -> None:
        if not changes:
            return
        for hook in self._hooks:
            await hook(conn, changes)
