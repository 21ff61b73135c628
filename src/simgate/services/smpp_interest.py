"""Which accounts have SMPP accounts, cached: what the SMPP outbox owes rows for (issue 15).

The SMPP outbox (services/smpp_outbox.py) owes a receipt for a message an SMPP account
submitted and a deliver_sm for each incoming SMS of an account that has SMPP accounts. It
asked the event bus for the record of every changed message of the SMPP dialect, and the
database for the SMPP accounts of every batch with incoming SMS: a statement per recorded
batch of the worker, ~110 µs of CPU on SQLite (mostly SQLAlchemy's result metadata), for
nothing when nobody uses the SMPP server. This cache keeps the accounts that have SMPP
accounts; with none, the bus reads no message for the outbox and the outbox reads nothing.

Staleness bound (services/polled_cache.py), as services/push_interest.py's:

- the accounts are read again when the last read is :data:`POLL_MS` old, on the first batch
  that finds it so, in that batch's transaction: an SMPP account created by **another
  process** (``simgate smpp-users create``) is seen by the changes recorded at most
  ``POLL_MS`` after it committed. An idle worker reads nothing.
- an SMPP account created in this process, or found by a bind in this process, is seen at
  once (store/smpp_users.py ``generation``, moved after the commit).

So the one case the bound leaves: the first SMPP account of a database that had none,
created by another process, then bound on a third process (not the worker's) and used to
submit a message that reaches its final state within ``POLL_MS`` of the worker's last
read: its receipt is not written (as an incoming SMS of the account in that second).
In ``simgate run`` the SMPP server is the worker's process and its bind moves the number.

A read that straddles a move of the number is not trusted: the next batch reads again.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.services.cache_epoch import POLL_MS
from simgate.services.polled_cache import PolledCache
from simgate.store import smpp_users
from simgate.store.smpp_users import SmppUserRepo

__all__ = ["POLL_MS", "SmppAccounts"]


class SmppAccounts:
    """The accounts that have SMPP accounts, read at most once a :data:`POLL_MS` (module)."""

    def __init__(self, *, clock: Clock, poll_ms: int = POLL_MS) -> None:
        self._cache = PolledCache(
            SmppUserRepo().accounts_with_users,
            clock=clock,
            counter=smpp_users.generation,
            poll_ms=poll_ms,
        )

    async def get(self, conn: AsyncConnection) -> frozenset[int]:
        """The accounts that have SMPP accounts; reads them in ``conn`` when the cached
        answer is due."""
        return await self._cache.get(conn)
