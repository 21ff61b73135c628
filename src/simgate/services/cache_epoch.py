"""One number that moves whenever an account, app, API key or gateway user changes.

The API processes cache what auth reads on every request (apps, keys, users, accounts:
``api/auth.py`` :class:`~simgate.api.auth.TtlCache`); each cache drops everything when this
epoch moves. Staleness bound (issue 15):

- **this process**: none. :class:`~simgate.services.accounts.AccountService` moves the
  epoch right after a change commits (a load that straddles it is not kept either).
- **another process** (the CLI, a second ``simgate serve``): every change also writes a
  fresh random stamp into the shared ``kv`` table, in the change's own transaction. The
  first request through a cache (:meth:`TtlCache.get_or_load`) that finds the stamp unread
  for :data:`POLL_MS` reads it (one short read; requests meanwhile go on with what is
  known); when it differs, the epoch moves. So a change elsewhere is seen at most
  ``POLL_MS`` plus one read after it commits while requests flow, and never later than
  the cache's own TTL. An idle process reads nothing.

A random stamp rather than a counter: two processes that each bump "n" to "n + 1" would
leave a reader that saw the first one blind to the second; distinct stamps always differ.
"""

from __future__ import annotations

import logging
import secrets

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.store import Store

log = logging.getLogger(__name__)

# How long another process's change may go unseen (plus one short read).
POLL_MS = 1_000
STAMP_DOC = "accounts_epoch"


class CacheEpoch:
    def __init__(self, *, store: Store, clock: Clock, poll_ms: int = POLL_MS) -> None:
        self._store = store
        self._clock = clock
        self._poll_ms = poll_ms
        self._value = 0
        self._stamp: str | None = None  # the shared stamp as last read or written here
        self._looked_ms: int | None = None
        self._looking = False

    @property
    def value(self) -> int:
        return self._value

    async def look_if_due(self) -> None:
        """Read the shared stamp when the last look is :data:`POLL_MS` old.

        Made by the request that finds it due (one short read a second at most); requests
        meanwhile go on with what is known. No task of its own: nothing outlives a request,
        and an idle process reads nothing.
        """
        now = self._clock.now_ms()
        if self._looking:
            return
        if self._looked_ms is not None and 0 <= now - self._looked_ms < self._poll_ms:
            return
        self._looking = True
        self._looked_ms = now
        try:
            await self._read_stamp()
        finally:
            self._looking = False

    async def stamp(self, conn: AsyncConnection) -> str:
        """Write a fresh shared stamp in the change's transaction; returns it for
        :meth:`changed` once the transaction commits."""
        stamp = secrets.token_hex(8)
        await self._store.accounts.upsert_doc(conn, STAMP_DOC, {"stamp": stamp})
        return stamp

    def changed(self, stamp: str | None = None) -> None:
        """A change committed in this process: every cache drops what it holds."""
        self._value += 1
        if stamp is not None:
            self._stamp = stamp

    async def _read_stamp(self) -> None:
        try:
            async with self._store.db.read_short() as conn:
                doc = await self._store.accounts.get_doc(conn, STAMP_DOC)
        except Exception as exc:  # the requests that use the caches see the outage themselves
            log.debug("cannot read the accounts cache stamp: %s", exc)
            return
        stamp = None if doc is None else str(doc.get("stamp"))
        if stamp != self._stamp:
            self._stamp = stamp
            self._value += 1
