"""Wake-ups between processes on PostgreSQL: LISTEN/NOTIFY (issue 15, "idle costs nothing").

With several processes on one database (``serve`` beside ``worker``, or ``run --workers N``),
the process that queues work is often not the one that does it. :class:`PgNotifier` is a relay
of the process's :class:`~simgate.lease_loop.Wakeup`: after a commit that queued work it sends
``pg_notify`` on :data:`~simgate.lease_loop.PG_CHANNEL`, coalesced (one statement in flight,
the topics that came meanwhile in the next), on an asyncpg connection of its own (opened at the
first NOTIFY, again after a failure): it never waits behind the group-commit writer nor for a
free pooled connection, and a NOTIFY is one prepared statement, not a pool checkout and a
SQLAlchemy execution around it (4-6 % of ``simgate run``'s CPU on PostgreSQL under load, issue
15; measured ~350 µs of CPU per NOTIFY that way, 45-80 µs this way). The NOTIFY is not sent by
the accept statement itself: a commit that carries one holds PostgreSQL's notify-queue lock
through its WAL flush, so such commits serialize across every session (measured: 8 connections
committing one-row UPDATEs did 850-1,079 commits/s plain, 197-267 with a ``pg_notify`` in the
statement).
:class:`PgListener` holds one asyncpg connection that LISTENs on the channel and wakes this
process's loops; when that connection drops it reconnects with a capped backoff and wakes
every loop once (what came meanwhile was missed).
Lost notifications cost only latency: the loops still poll, at ``idle_max_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from simgate.clock import SystemClock
from simgate.lease_loop import CALLS, PG_CHANNEL, PUSHES, QUEUE, FailureRun, Wakeup

log = logging.getLogger(__name__)

RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 30.0
CONNECT_TIMEOUT_S = 10.0
# At most one NOTIFY per topic per this, however many commits (the first after a quiet spell
# at once); the longer spacing while commits that queue work come faster than BUSY_PER_S (a
# worker then finds work whenever it looks, and rarely idles to wait for a NOTIFY). Issue 15:
# at one NOTIFY per 5 ms they were ~5 % of the HTTP process's CPU of a one-number send under
# load on PostgreSQL (py-spy), ~75 µs of CPU each on asyncpg.
NOTIFY_SPACING_S = 0.005
NOTIFY_SPACING_BUSY_S = 0.025
BUSY_PER_S = 800.0


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """``postgresql+asyncpg://u@h/db`` → ``postgresql://u@h/db`` (what asyncpg.connect takes)."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PgNotifier:
    """Sends this process's wake-ups to the others (a :class:`Wakeup` relay)."""

    def __init__(self, engine: AsyncEngine, wakeup: Wakeup) -> None:
        self._dsn = asyncpg_dsn(engine.url.render_as_string(hide_password=False))
        self._wakeup = wakeup
        self._pending: set[str] = set()
        # Relays since the last NOTIFY went out, and when that was (how busy: BUSY_PER_S).
        self._relays = 0
        self._since = 0.0
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None  # asyncpg.Connection, opened by the first NOTIFY
        self._failing = FailureRun("sending wake-ups", clock=SystemClock(), logger=log)
        self.sent = 0  # NOTIFY statements sent (tests)

    def start(self) -> None:
        self._wakeup.add_relay(self.relay)

    def relay(self, topic: str) -> None:
        self._pending.add(topic)
        self._relays += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._send(), name="pg-notify")

    async def _send(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            topics, self._pending = sorted(self._pending), set()
            now = loop.time()
            spacing = notify_spacing(self._relays, now - self._since)
            self._relays, self._since = 0, now
            try:
                conn = await self._connection()
                for topic in topics:  # outside a transaction: one round trip each
                    await conn.execute(_NOTIFY, PG_CHANNEL, self._wakeup.payload(topic))
            except Exception as exc:  # the others' poll picks the work up a little later
                self._failing.failed(exc)
                await self._close()  # opened afresh by the next NOTIFY
                return
            self._failing.succeeded()
            self.sent += len(topics)
            # Under load every commit queues work: what comes in the next few ms rides one
            # NOTIFY (a busy worker needs none; an idle one waits at most this much longer,
            # a little longer while commits keep coming this fast: it then rarely idles).
            await asyncio.sleep(spacing)

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_S)
        return self._conn

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(conn.close(timeout=2))

    async def stop(self) -> None:
        self._wakeup.remove_relay(self.relay)
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(Exception):
                await task
        await self._close()


def notify_spacing(relays: int, elapsed_s: float) -> float:
    """How long to wait after a NOTIFY before the next, given the ``relays`` (commits that
    queued work) that came in the ``elapsed_s`` since the last one went out."""
    return NOTIFY_SPACING_BUSY_S if relays >= BUSY_PER_S * elapsed_s else NOTIFY_SPACING_S


_NOTIFY = "SELECT pg_notify($1, $2)"  # prepared once per connection by asyncpg's cache


def _setter(event: asyncio.Event) -> Any:
    return lambda _conn: event.set()


class PgListener:
    """LISTENs on :data:`PG_CHANNEL` and wakes this process's loops."""

    def __init__(self, dsn: str, wakeup: Wakeup) -> None:
        self._dsn = dsn
        self._wakeup = wakeup
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._failing = FailureRun("listening for wake-ups", clock=SystemClock(), logger=log)

    async def start(self) -> None:
        """Start listening; returns once the first LISTEN is in place (or has failed)."""
        self._task = asyncio.create_task(self._keep(), name="pg-listen")
        waiter = asyncio.create_task(self._listening.wait())
        # FIRST_COMPLETED: the listening task never ends, so waiting for both (asyncio.wait's
        # default) held every PostgreSQL worker's start for the whole timeout.
        await asyncio.wait(
            {waiter, self._task}, timeout=CONNECT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._wakeup.delivered(payload)

    async def _keep(self) -> None:
        delay = RECONNECT_FIRST_S
        while True:
            closed = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_S)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                self._failing.failed(exc)
                self._listening.set()  # start() need not wait for it: the poll covers
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            try:
                conn.add_termination_listener(_setter(closed))
                await conn.add_listener(PG_CHANNEL, self._on_notify)
                self._failing.succeeded()
                self._listening.set()
                delay = RECONNECT_FIRST_S
                for topic in (QUEUE, PUSHES, CALLS):  # whatever was said while not listening
                    self._wakeup.wake_local(topic)
                await closed.wait()
            except (OSError, asyncpg.PostgresError) as exc:
                self._failing.failed(exc)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(conn.close(timeout=2))
            await asyncio.sleep(delay)
