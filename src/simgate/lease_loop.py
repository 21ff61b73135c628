"""One worker loop for every lease queue: run a cycle, idle when it found nothing, stop cleanly.

The message dispatcher, the call dispatcher, the push sender and the reaper differ only in
what one cycle does (lease and hand out work, or reap) and in how long they idle; the loop
around it is this one. The idle wait is on the clock it is given (a test's FakeClock moves it,
or the system clock for a loop that polls what other processes write) and ends early on
:meth:`LeaseLoop.wake` (room freed, results recorded) or on :meth:`stop`.
A cycle that raises counts as idle, so a database in trouble is retried at the idle pace
instead of in a hot loop; :meth:`stop` lets the cycle in flight finish, so what it leased is
handed out and recorded before the owner winds down. A run of failing cycles is logged by
:class:`FailureRun`: its start with the cause, a reminder every few minutes, and its end with how
long it lasted and how many cycles failed (issue 14 item 10: not a traceback per cycle, which
was 10 MB a minute at the dispatcher's 50 ms pace during a database outage).

Idle costs nothing (issue 15): the loops are woken when there is work (:class:`Wakeup`, fed by
the services that queue it, and by PostgreSQL NOTIFY from other processes), so the idle wait
backs off exponentially from ``idle_seconds`` to ``idle_max_seconds`` while nothing comes; the
poll that remains is for what no signal reaches (another process on SQLite). Scheduled work
(a retry's due time) is announced by the cycle with :meth:`LeaseLoop.due_in`.

A base module (it needs only the clock), so that dispatch/, push/ and services/ may use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import text

from simgate.clock import Clock

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger(__name__)

# One cycle: True when it did a full share of work and should run again at once.
Cycle = Callable[[], Awaitable[bool]]

REMIND_SECONDS = 300.0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


class FailureRun:
    """The log lines of something that keeps failing: one per change of state, not per try.

    ``failed`` on the first failure logs an ERROR with the cause (its traceback included: one
    JSON line, logsetup.py); later failures are only counted, with a WARNING reminder every
    ``remind_seconds`` while they last. ``succeeded`` after failures logs a WARNING that it
    works again, with how long it failed and how often.
    """

    def __init__(
        self,
        what: str,
        *,
        clock: Clock,
        logger: logging.Logger,
        remind_seconds: float = REMIND_SECONDS,
    ) -> None:
        self.what = what
        self._clock = clock
        self._log = logger
        self._remind_ms = int(remind_seconds * 1000)
        self.failures = 0
        self._since_ms = 0
        self._reminded_ms = 0

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failed(self, exc: BaseException) -> None:
        now = self._clock.now_ms()
        self.failures += 1
        if self.failures == 1:
            self._since_ms = self._reminded_ms = now
            self._log.error("%s failing: %s", self.what, _first_line(exc), exc_info=exc)
        elif now - self._reminded_ms >= self._remind_ms:
            self._reminded_ms = now
            self._log.warning(
                "%s still failing after %.1f s, %d failed cycles: %s",
                self.what,
                (now - self._since_ms) / 1000,
                self.failures,
                _first_line(exc),
            )

    def succeeded(self) -> None:
        if not self.failures:
            return
        self._log.warning(
            "%s works again after %.1f s, %d failed cycles",
            self.what,
            (self._clock.now_ms() - self._since_ms) / 1000,
            self.failures,
        )
        self.failures = 0


class LeaseLoop:
    """``name`` names the task and the log lines of failing cycles ("<name> cycle failing")."""

    def __init__(
        self,
        name: str,
        *,
        cycle: Cycle,
        clock: Clock,
        idle_seconds: float,
        idle_max_seconds: float | None = None,
        wakes_during_cycle: bool = True,
        wake_resets_backoff: bool = True,
    ) -> None:
        """``wakes_during_cycle=False``: a wake-up that comes while a cycle runs is dropped
        when that cycle finds nothing, so the loop idles until the next one (or the poll).
        ``idle_max_seconds``: each idle wait in a row doubles, up to this; a busy cycle or a
        wake-up starts again at ``idle_seconds`` (None: always ``idle_seconds``).
        ``wake_resets_backoff=False``: only work found by a poll (an idle wait that ran out)
        starts the waits again at ``idle_seconds``; work that came with a wake-up says
        nothing about what only the poll can see (another process on SQLite), so the poll
        keeps its pace (the dispatcher in ``simgate run``: 3.6 lease transactions per single
        send were quick polls after each wake-up, issue 15)."""
        self.name = name
        self._keep_wakes = wakes_during_cycle
        self._wake_resets = wake_resets_backoff
        # The cycles since the last idle wait began because it ran out (not by a wake-up).
        self._from_poll = True
        self._cycle = cycle
        self._clock = clock
        self._idle_s = idle_seconds
        self._idle_max_s = max(idle_seconds, idle_max_seconds or idle_seconds)
        self._next_idle_s = idle_seconds
        self._due_s: float | None = None
        self.cycles = 0  # cycles run so far (tests count them: no cycle while idle)
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._failures = FailureRun(f"{name} cycle", clock=clock, logger=log)

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def stopping(self) -> bool:
        return self._stopping

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Run no further cycle; wait for the one in flight."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """Cut the idle wait short (or skip the next one): there may be work now."""
        self._wake.set()

    def due_in(self, seconds: float) -> None:
        """From inside a cycle: scheduled work falls due in ``seconds``, so the idle wait
        after this cycle ends by then whatever the backoff has reached."""
        seconds = max(0.0, seconds)
        self._due_s = seconds if self._due_s is None else min(self._due_s, seconds)

    @property
    def woken(self) -> bool:
        """From inside a cycle: a wake-up came since it began, or since :meth:`looking`
        (there may be more work)."""
        return self._wake.is_set()

    def looking(self) -> None:
        """From inside a cycle, right before it looks for work (queues its lease): the
        wake-ups so far are answered by that look, so only later ones count as
        :attr:`woken`. Safe for work whose wake-up follows its commit (all of QUEUE's):
        what committed before this call is visible to a look that runs after it."""
        if self._keep_wakes:
            self._wake.clear()

    @property
    def next_idle_seconds(self) -> float:
        """How long the next idle wait lasts unless woken (backoff; tests, diagnostics)."""
        return self._next_idle_s

    async def _run(self) -> None:
        while not self._stopping:
            if self._keep_wakes:  # cleared before the cycle: a wake-up while it runs counts
                self._wake.clear()
            self._due_s = None
            self.cycles += 1
            try:
                busy = await self._cycle()
            except Exception as exc:
                self._failures.failed(exc)
                busy = False
            else:
                self._failures.succeeded()
            if busy:
                if self._wake_resets or self._from_poll:
                    self._next_idle_s = self._idle_s
            elif not self._stopping:
                if not self._keep_wakes:
                    self._wake.clear()
                await self._idle()

    async def _idle(self) -> None:
        if self._wake.is_set():
            self._woke()
            return
        wait = self._next_idle_s if self._due_s is None else min(self._next_idle_s, self._due_s)
        self._next_idle_s = min(self._next_idle_s * 2, self._idle_max_s)
        sleeper = asyncio.ensure_future(self._clock.sleep(wait))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (sleeper, waker):
                t.cancel()
        if self._wake.is_set():
            self._woke()
        else:
            self._from_poll = True

    def _woke(self) -> None:
        self._from_poll = False
        if self._wake_resets:  # work came: poll at the quick pace again for a while
            self._next_idle_s = self._idle_s


# Wake-up topics: what kind of work was just made.
QUEUE = "queue"  # messages queued (accept, requeue)
PUSHES = "pushes"  # push rows stored
CALLS = "calls"  # voice calls queued
# SMPP outbox rows stored (receipts, incoming SMS for binds): wakes the SMPP server's
# deliverers, in the HTTP process, from the worker's commits (services/smpp_outbox.py).
SMPP_OUT = "smpp_out"

# The PostgreSQL channel that carries wake-ups between processes; the payload is
# "<topic> <origin>", so a process can skip its own (it woke its loops already).
PG_CHANNEL = "simgate_wake"


class Wakeable(Protocol):
    """What a topic wakes: a :class:`LeaseLoop`, or any loop of its own kind."""

    def wake(self) -> None: ...


class Wakeup:
    """Who makes work says so; the loops that do it stop idling (issue 15: idle costs nothing).

    In-process: :meth:`notify` wakes the loops attached to a topic at once. It may be called
    inside the write transaction that makes the work: the loops' claims are writes too, and
    the database's one writer per process runs them after that commit (store/database.py).
    Between processes: relays (the PostgreSQL NOTIFY bridge, dispatch/pg_wakeup.py) pass it
    on; :meth:`wake_local` is how they deliver what other processes notified.
    """

    def __init__(self) -> None:
        self.origin = uuid.uuid4().hex[:12]
        self._loops: defaultdict[str, list[Wakeable]] = defaultdict(list)
        self._relays: list[Callable[[str], None]] = []
        self.notified: defaultdict[str, int] = defaultdict(int)  # per topic (tests)

    def attach(self, topic: str, loop: Wakeable) -> None:
        self._loops[topic].append(loop)

    def detach(self, loop: Wakeable) -> None:
        for loops in self._loops.values():
            if loop in loops:
                loops.remove(loop)

    def add_relay(self, relay: Callable[[str], None]) -> None:
        self._relays.append(relay)

    def remove_relay(self, relay: Callable[[str], None]) -> None:
        if relay in self._relays:
            self._relays.remove(relay)

    def notify(self, topic: str, *, relay: bool = True) -> None:
        """There is new work of ``topic``: wake this process's loops, and (``relay``) tell
        the other processes. ``relay=False`` when the caller tells them itself (a NOTIFY in
        its own transaction, delivered only when that commits)."""
        self.notified[topic] += 1
        self.wake_local(topic)
        if relay:
            for send in self._relays:
                send(topic)

    async def notify_at_commit(self, conn: AsyncConnection, topic: str) -> bool:
        """On PostgreSQL, tell the other processes about ``topic`` with a NOTIFY inside the
        caller's transaction: PostgreSQL delivers it only if and when that commits (and
        holds a database-wide lock until then: keep it out of the accept commits,
        dispatch/pg_wakeup.py). True when sent: the caller then skips the relays, which
        would tell them before the commit. False on SQLite (nothing sent)."""
        if conn.dialect.name != "postgresql":
            return False
        await conn.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": PG_CHANNEL, "payload": self.payload(topic)},
        )
        return True

    def payload(self, topic: str) -> str:
        """What a NOTIFY on :data:`PG_CHANNEL` carries for ``topic`` from this process."""
        return f"{topic} {self.origin}"

    def delivered(self, payload: str) -> None:
        """A NOTIFY payload arrived: wake the topic's loops unless it is this process's own."""
        topic, _, origin = payload.partition(" ")
        if origin != self.origin:
            self.wake_local(topic)

    def wake_local(self, topic: str) -> None:
        for loop in self._loops.get(topic, ()):
            loop.wake()
