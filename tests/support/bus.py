"""Publishing through a runtime's event bus as the worker does, counting what it runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.events import Change
from simgate.runtime import Runtime


async def publish_counting(runtime: Runtime, changes: Sequence[Change]) -> list[str]:
    """Publish ``changes`` through the runtime's bus in a write transaction, as the worker
    does; returns the statements it ran."""
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        statements.append(sql)

    async def job(conn: AsyncConnection) -> None:
        event.listen(conn.sync_connection, "before_cursor_execute", seen)
        assert runtime.events is not None
        try:
            await runtime.events.publish(conn, changes)
        finally:
            event.remove(conn.sync_connection, "before_cursor_execute", seen)

    await runtime.store.db.write(job)
    return statements
