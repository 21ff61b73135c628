"""What the lines' state changes: which worker drives an exclusive line, ports going up or
down, and USSD answers on a port (the Dinstar ``port`` and ``ussd`` pushes, spec §2.9)."""

from __future__ import annotations

import functools

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.domain.events import PortChanged, UssdReplied
from simgate.services.changes import Publish
from simgate.store import Store, owners


class LineService:
    def __init__(self, *, store: Store, clock: Clock, publish: Publish) -> None:
        self._db = store.db
        self._clock = clock
        self._publish = publish

    # ---- ownership of lines only one worker may drive (a modem port, an SMPP bind) --
    async def claim(self, *, line: str, owner: str, now_ms: int, until_ms: int) -> bool:
        """Take or renew the lease on ``line``; False while another live owner holds it."""
        job = functools.partial(
            owners.claim, line=line, owner=owner, now_ms=now_ms, until_ms=until_ms
        )
        return await self._db.write(job)

    async def release(self, *, line: str, owner: str) -> None:
        await self._db.write(functools.partial(owners.release, line=line, owner=owner))

    # ---- what the lines report -------------------------------------------------------
    async def port_changed(self, *, line: str, port: int, up: bool) -> None:
        change = PortChanged(line, port, up, self._clock.now_ms())

        async def job(conn: AsyncConnection) -> None:
            await self._publish(conn, [change])

        await self._db.write(job)

    async def ussd_replied(
        self, conn: AsyncConnection, *, line: str, port: int, text: str, now_ms: int
    ) -> None:
        """Record a USSD answer inside the caller's unit of work (which keeps the reply)."""
        await self._publish(conn, [UssdReplied(line, port, text, now_ms)])
