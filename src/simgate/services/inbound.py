"""Incoming SMS: store them for the account that owns the line and announce them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.domain.events import InboundStored
from simgate.domain.records import InboundRecord
from simgate.errors import NotFound
from simgate.lines.base import IncomingSms, PortInfo
from simgate.services.changes import Publish
from simgate.store import Store


class InboundService:
    def __init__(
        self, *, store: Store, clock: Clock, publish: Publish, account_name: str | None = None
    ) -> None:
        self._store = store
        self._clock = clock
        self._publish = publish
        self._account_name = account_name
        self._account_id: int | None = None

    async def _owner(self) -> int:
        """The account incoming SMS belong to: the configured one, else the first account."""
        if self._account_id is None:
            async with self._store.db.read() as conn:
                if self._account_name:
                    account = await self._store.accounts.find_account(conn, self._account_name)
                else:
                    accounts = await self._store.accounts.list_accounts(conn)
                    account = accounts[0] if accounts else None
            if account is None:
                raise NotFound("no account to receive incoming SMS")
            self._account_id = account.id
        return self._account_id

    async def receive(
        self, line: str, messages: Sequence[IncomingSms], ports: Sequence[PortInfo] = ()
    ) -> list[int]:
        account_id = await self._owner()
        now = self._clock.now_ms()
        ids = await self._store.new_ids(len(messages), now)
        imsi = {p.index: p.imsi for p in ports}
        records = [
            InboundRecord(
                id=mid,
                account_id=account_id,
                line=line,
                port=m.port,
                sender=m.sender,
                recipient=m.recipient,
                text=m.text,
                smsc=m.smsc,
                imsi=imsi.get(m.port, ""),
                parts=m.parts,
                received_ms=m.received_ms,
                read=False,
            )
            for mid, m in zip(ids, messages, strict=True)
        ]

        async def job(conn: AsyncConnection) -> None:
            await self._store.inbound.insert(conn, records)
            await self._publish(conn, [InboundStored(r.id, now) for r in records])

        await self._store.db.write(job)
        return ids
