"""Whose messages may owe a push now: the push formats' interest, cached (issue 15).

The event bus reads the record, account and app of every changed message some subscriber
reads, and the outbox then the push settings of their accounts: in ``simgate run`` under
one-number OpenVox sends that was over half of the worker's cost of recording a batch, for
accounts with no push URL at all (py-spy). A format that says how (``interest_docs`` and
``interest``, push/base.py) tells from its stored settings which accounts or apps may be
pushed for; this cache keeps the answer, and the bus reads only those messages (none at all
when nobody is pushed for).

Staleness bound (services/polled_cache.py), as the API's caches of accounts and apps
(services/cache_epoch.py):

- the settings are read again when the last read is :data:`POLL_MS` old, on the first
  batch that finds it so, in that batch's transaction: a push URL set by **any** process
  (the API's set_config, ``simgate gateway push``, ``simgate apps update``) takes effect for
  the changes recorded at most ``POLL_MS`` after it committed. An idle worker reads nothing.
- with the account service's epoch (``AccountService.epoch``), an app changed in this
  process (its ``report_url``), an OpenVox set_config and a Dinstar push target set here
  (services/openvox.py, services/dinstar.py move the epoch) are seen at once, and an app
  another process changed as soon as this process's API caches see it.

A read that straddles a move of the epoch is not trusted: the next batch reads again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.domain.accounts import App
from simgate.domain.pushes import EVERY, Interest, Owners, combine
from simgate.services.cache_epoch import POLL_MS
from simgate.services.events import message_dialects
from simgate.services.polled_cache import PolledCache
from simgate.store.event_reads import push_settings

__all__ = ["POLL_MS", "Epoch", "PushInterest"]


class Epoch(Protocol):
    """A number that moves when an account or app changed (services/cache_epoch.py)."""

    @property
    def value(self) -> int: ...


class _Interested(Protocol):
    interest_docs: Sequence[str]

    def interest(self, docs: Mapping[str, Mapping[str, Any]], apps: Sequence[App]) -> Interest: ...


class PushInterest:
    """The formats' interest, read at most once a :data:`POLL_MS` (see the module)."""

    def __init__(
        self,
        formats: Sequence[object],
        *,
        clock: Clock,
        epoch: Epoch | None = None,
        poll_ms: int = POLL_MS,
    ) -> None:
        self._dynamic: list[_Interested] = []
        static: list[Interest] = []
        self._every = False  # a format that reads every message and says no more
        for fmt in formats:
            if callable(getattr(fmt, "interest", None)):
                self._dynamic.append(fmt)  # type: ignore[arg-type]
                continue
            dialects = message_dialects(fmt)
            if dialects is None:
                self._every = True
            else:
                static.append(dict.fromkeys(dialects, EVERY))
        self._static = combine(static)
        self._prefixes = frozenset(p for f in self._dynamic for p in f.interest_docs)
        # Only the formats that read their settings need reading again.
        self._cache = (
            PolledCache(
                self._read,
                clock=clock,
                counter=(lambda: epoch.value) if epoch is not None else (lambda: 0),
                poll_ms=poll_ms,
            )
            if self._dynamic
            else None
        )

    async def get(self, conn: AsyncConnection) -> Mapping[str, Owners] | None:
        """By dialect, whose messages may owe a push; None: every message (a format that
        does not say). Reads the settings in ``conn`` when the cached answer is due."""
        if self._every:
            return None
        if self._cache is None:
            return self._static
        return await self._cache.get(conn)

    async def _read(self, conn: AsyncConnection) -> dict[str, Owners]:
        docs, apps = await push_settings(conn, self._prefixes)
        return combine([self._static, *(f.interest(docs, apps) for f in self._dynamic)])
