"""Use cases of the OpenVox dialect (spec §3.3): outbox and inbox pages, sync-mode polling,
and the per-account "SMS to HTTP" push settings document.

Built once by the composition root and reached as ``services.openvox``. Dialects give times
as epoch ms; here they become id ranges (message and inbound ids are time-ordered:
domain/ids.py), so filters are key ranges on an index. The push settings are kept as the
JSON document the dialect validated; this service only stores and loads it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simgate.clock import Clock
from simgate.domain import ids
from simgate.domain.messages import State
from simgate.domain.records import InboundRecord, MessageRecord
from simgate.services.cache_epoch import CacheEpoch
from simgate.store import Store
from simgate.store.dialects import openvox as repo
from simgate.store.dialects.openvox import OutboxRow, Page

__all__ = ["IN_FLIGHT", "OpenVoxService", "OutboxRow", "Page", "Window", "push_doc_key"]

# States in which the line has not answered yet: ``/sms/send`` sync mode waits them out (§7).
IN_FLIGHT: frozenset[State] = frozenset({State.ACCEPTED, State.QUEUED, State.SUBMITTING})


def push_doc_key(account_id: int) -> str:
    """The ``kv`` document holding an account's push settings (read by the push format)."""
    return f"openvox.push.{account_id}"


@dataclass(frozen=True, slots=True)
class Window:
    """Optional filters shared by both boxes; times are UTC epoch ms, inclusive."""

    numbers: tuple[str, ...] = ()  # spellings of one number; empty = any
    from_ms: int | None = None
    to_ms: int | None = None

    @property
    def id_from(self) -> int | None:
        return ids.lower_bound(self.from_ms) if self.from_ms is not None else None

    @property
    def id_to(self) -> int | None:
        return ids.upper_bound(self.to_ms) if self.to_ms is not None else None


class OpenVoxService:
    def __init__(self, *, store: Store, clock: Clock, epoch: CacheEpoch | None = None) -> None:
        self._store = store
        self._clock = clock
        # Moved by a push setting changed here, so this process's push outbox sees it at once
        # (services/push_interest.py; other processes within its poll).
        self._epoch = epoch

    async def outbox(
        self,
        account_id: int,
        window: Window,
        *,
        states: Sequence[State],
        offset: int,
        limit: int,
    ) -> Page[OutboxRow]:
        return await repo.outbox_page(
            self._store.db,
            account_id=account_id,
            states=states,
            recipients=window.numbers,
            id_from=window.id_from,
            id_to=window.id_to,
            offset=offset,
            limit=limit,
        )

    async def inbox(
        self, account_id: int, window: Window, *, offset: int, limit: int
    ) -> Page[InboundRecord]:
        async with self._store.db.read() as conn:
            return await repo.inbox_page(
                conn,
                account_id=account_id,
                senders=window.numbers,
                id_from=window.id_from,
                id_to=window.id_to,
                offset=offset,
                limit=limit,
            )

    async def wait_answered(
        self, message_ids: Sequence[int], *, timeout_ms: int
    ) -> list[MessageRecord]:
        """Sync mode: poll until no message is still in flight, or the timeout (§7).

        Polling the database (with backoff) works whichever process runs the worker,
        including several workers on PostgreSQL; in-process events would not.
        """
        clock = self._clock
        deadline = clock.now_ms() + timeout_ms
        delay = 0.005
        while True:
            async with self._store.db.read() as conn:
                rows = await self._store.messages.get(conn, message_ids)
            left = deadline - clock.now_ms()
            if left <= 0 or not any(r.state in IN_FLIGHT for r in rows):
                return rows
            await clock.sleep(min(delay, left / 1000))
            delay = min(delay * 1.5, 0.25)

    # ---- /smsoutbox/get_config and set_config ------------------------------------------
    async def push_config(self, account_id: int) -> dict[str, Any] | None:
        """The account's stored push settings document; None before the first set_config."""
        async with self._store.db.read() as conn:
            return await self._store.accounts.get_doc(conn, push_doc_key(account_id))

    async def set_push_config(self, account_id: int, doc: Mapping[str, Any]) -> None:
        await self._store.db.write(
            functools.partial(
                self._store.accounts.put_doc, key=push_doc_key(account_id), value=dict(doc)
            )
        )
        if self._epoch is not None:
            self._epoch.changed()
