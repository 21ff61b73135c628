"""Storage: one SQLAlchemy Core implementation for SQLite and PostgreSQL.

:class:`Store` bundles the repositories with the :class:`Database`. Repositories are row
operations that return what they changed; the services decide and record the changes.
"""

from __future__ import annotations

import asyncio
import functools

from simgate.domain.ids import IdAllocator
from simgate.secretbox import SecretBox
from simgate.store.accounts import AccountRepo
from simgate.store.calls import CallRepo
from simgate.store.database import Database
from simgate.store.fx import FxRepo
from simgate.store.inbound import InboundRepo
from simgate.store.ledger import LedgerRepo
from simgate.store.messages import MessageRepo
from simgate.store.reassembly import ReassemblyRepo
from simgate.store.reports import ReportRepo
from simgate.store.voice_files import VoiceFileRepo

ID_BLOCK = 10_000


class Store:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.accounts = AccountRepo(box)
        self.ledger = LedgerRepo()
        self.messages = MessageRepo()
        self.reports = ReportRepo()
        self.inbound = InboundRepo()
        self.reassembly = ReassemblyRepo()
        self.calls = CallRepo()
        self.voice_files = VoiceFileRepo()
        self.fx = FxRepo()
        self._ids = IdAllocator()
        self._id_lock = asyncio.Lock()

    async def new_ids(self, count: int, now_ms: int) -> list[int]:
        """``count`` message ids, unique across processes (see :mod:`simgate.domain.ids`).

        Never call this from inside a write job: refilling the block is a write of its own.
        """
        ids = self._ids
        if ids.remaining() >= count and not self._id_lock.locked():
            # The block covers them and no refill waits: taken with no await in between,
            # so nothing else runs meanwhile; the lock (a coroutine to enter and to leave,
            # ~5 % of a one-number send's loop CPU, issue 15) only orders the refills.
            return [ids.take(now_ms) for _ in range(count)]
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
