"""Callbacks run once the write transaction they were registered in has committed.

A job of :meth:`Database.write <simgate.store.database.Database.write>` that must tell
something only once its rows are visible to readers (a wake-up of the SMPP outbox's
deliverers, services/smpp_outbox.py; a cached view to read again, store/smpp_users.py)
registers a callback with :func:`after_commit` on the connection it was handed. The
database's writer collects them per transaction attempt (:func:`collecting`) and runs
them after that transaction committed, before the batch's writers hear of the commit. A
transaction that fails or rolls back runs none of them: group commit then re-runs each
job alone (store/database.py), and the job registers again in the transaction that
commits. Before this a job queued a write that wrote nothing behind its batch and waited
for it: a job of the writer's queue, a turn of the loop and, on PostgreSQL, a transaction
of its own (issue 15).

The callbacks live in the connection's ``info`` only while the jobs run (that dictionary
belongs to the pooled DBAPI connection and outlives the checkout).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.errors import StoreError

__all__ = ["AfterCommit", "after_commit", "collecting"]

log = logging.getLogger(__name__)

_KEY = "simgate.after_commit"


class AfterCommit:
    """The callbacks of one transaction attempt, in the order registered, each once."""

    __slots__ = ("_callbacks",)

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []

    def add(self, callback: Callable[[], None]) -> None:
        # Equal callbacks (a bound method of one object) run once: a subscriber called by
        # several jobs of one batch asks once per transaction.
        if callback not in self._callbacks:
            self._callbacks.append(callback)

    def run(self) -> None:
        """Once the transaction committed. A callback's error is logged, never raised: the
        write is committed, and its callers must hear so."""
        for callback in self._callbacks:
            try:
                callback()
            except Exception:
                log.exception("after-commit callback %r failed", callback)


@contextlib.contextmanager
def collecting(conn: AsyncConnection) -> Iterator[AfterCommit]:
    """While the jobs of one transaction attempt run on ``conn``: what they register."""
    hooks = AfterCommit()
    conn.info[_KEY] = hooks
    try:
        yield hooks
    finally:
        del conn.info[_KEY]


def after_commit(conn: AsyncConnection, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the write transaction of ``conn`` has committed (never when it
    fails or rolls back). Only inside a job of the database's writer: elsewhere nobody
    would run it, so that raises."""
    hooks = conn.info.get(_KEY)
    if hooks is None:
        raise StoreError("after_commit outside a write transaction of the database")
    hooks.add(callback)
