"""Outbox and inbox listings for gateway-style dialects (OpenVox smsoutbox/smsinbox get).

Dialects give times as epoch ms; here they become id ranges (message and inbound ids are
time-ordered: domain/ids.py), so filters are key ranges on an index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from simgate.domain import ids
from simgate.domain.messages import State
from simgate.domain.records import InboundRecord, MessageRecord
from simgate.store import Store
from simgate.store import boxes as repo

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    total: int
    records: list[T]


@dataclass(frozen=True, slots=True)
class Window:
    """Optional filters shared by both boxes; times are UTC epoch ms, inclusive."""

    numbers: tuple[str, ...] = ()  # spellings of one number; empty = any
    from_ms: int | None = None
    to_ms: int | None = None

    def id_range(self) -> tuple[int | None, int | None]:
        low = ids.lower_bound(self.from_ms) if self.from_ms is not None else None
        high = ids.upper_bound(self.to_ms) if self.to_ms is not None else None
        return low, high


class BoxService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def outbox(
        self,
        account_id: int,
        window: Window,
        *,
        states: Sequence[State],
        offset: int,
        limit: int,
    ) -> Page[MessageRecord]:
        low, high = window.id_range()
        async with self._store.db.read() as conn:
            total, rows = await repo.outbox_page(
                conn,
                account_id=account_id,
                states=states,
                recipients=window.numbers,
                id_from=low,
                id_to=high,
                offset=offset,
                limit=limit,
            )
        return Page(total, rows)

    async def inbox(
        self, account_id: int, window: Window, *, offset: int, limit: int
    ) -> Page[InboundRecord]:
        low, high = window.id_range()
        async with self._store.db.read() as conn:
            total, rows = await repo.inbox_page(
                conn,
                account_id=account_id,
                senders=window.numbers,
                id_from=low,
                id_to=high,
                offset=offset,
                limit=limit,
            )
        return Page(total, rows)

    async def messages(self, ids_: Sequence[int]) -> list[MessageRecord]:
        async with self._store.db.read() as conn:
            return await self._store.messages.get(conn, ids_)
