"""Every batch of changes the units of work hand on, as a subscriber sees them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.events import Change
from simgate.runtime import Runtime

Batches = list[list[Change]]


def record_changes(runtime: Runtime) -> Batches:
    """Subscribe to ``runtime``'s changes: each non-empty batch, in the order handed on."""
    seen: Batches = []

    async def hook(conn: AsyncConnection, changes: Sequence[Change]) -> None:
        seen.append(list(changes))

    runtime.changes.subscribe(hook)
    return seen
