"""Storage: one SQLAlchemy Core implementation for SQLite and PostgreSQL.

:class:`Store` bundles the repositories with the :class:`Database` and the event hooks
(the push outbox subscribes here, so push rows are written in the same transaction as the
state change that caused them).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.events import Change
from simgate.domain.ids import IdAllocator
from simgate.secretbox import SecretBox
from simgate.store.accounts import AccountRepo
from simgate.store.calls import CallRepo
from simgate.store.database import Database
from simgate.store.fx import FxRepo
from simgate.store.inbound import InboundRepo
from simgate.store.messages import EventHook, MessageRepo
from simgate.store.voice_files import VoiceFileRepo

ID_BLOCK = 10_000


class Store:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self._hooks: list[EventHook] = []
        self.accounts = AccountRepo(box)
        self.messages = MessageRepo(self._emit)
        self.inbound = InboundRepo(self._emit)
        self.calls = CallRepo(self._emit)
        self.voice_files = VoiceFileRepo()
        self.fx = FxRepo()
        self._ids = IdAllocator()
        self._id_lock = asyncio.Lock()

    def add_event_hook(self, hook: EventHook) -> None:
        self._hooks.append(hook)

    async def announce(self, conn: AsyncConnection, events: Sequence[Change]) -> None:
        """Hand events to the subscribers inside the caller's transaction."""
        await self._emit(conn, events)

    async def _emit(self, conn: AsyncConnection, events: Sequence[Change]) -> None:
        for hook in self._hooks:
            await hook(conn, events)

    async def new_ids(self, count: int, now_ms: int) -> list[int]:
        """``count`` message ids, unique across processes (see :mod:`simgate.domain.ids`).

        Never call this from inside a write job: refilling the block is a write of its own.
        """
        out: list[int] = []
        async with self._id_lock:
            while len(out) < count:
                if self._ids.remaining() == 0:
                    size = max(ID_BLOCK, count - len(out))
                    start = await self.db.write(
                        functools.partial(self.accounts.reserve_block, name="msg", size=size)
                    )
                    self._ids.refill(start, size)
                take = min(count - len(out), self._ids.remaining())
                out.extend(self._ids.take(now_ms) for _ in range(take))
        return out


__all__ = ["Database", "Store"]
