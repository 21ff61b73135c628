"""Wake-ups from ``simgate run``'s HTTP process to its worker child (issue 15, SQLite).

``simgate run`` answers HTTP in one process and runs the worker roles in a child (cli/
worker_child.py), so each has a core. On PostgreSQL the wake-up between them is LISTEN/NOTIFY
(dispatch/pg_wakeup.py); SQLite has nothing like it, and without a signal the child would find
a send only at its next poll (backing off to ``idle_max_seconds``). Here the parent keeps a
``socketpair(AF_UNIX, SOCK_DGRAM)``; the child inherits one end. :class:`PipeNotifier` is a
relay of the parent's :class:`~simgate.lease_loop.Wakeup`: one datagram per topic per event
loop turn, however many commits came in it (one ``send`` syscall, no thread, no database).
:class:`PipeListener` reads them in the child and wakes its loops. A datagram lost to a full
buffer costs nothing: the child has unread ones, so it is woken anyway.

The child wakes its dispatcher for new messages at most once per :data:`QUEUE_GATHER_S`
while they keep coming (the first after a quiet spell at once): :class:`PipeListener`
holds the datagrams that follow a wake-up until that much time has passed since it. A
wake-up per send made the child lease each message in a write transaction of its own and
record its answer in another, right when the HTTP process's next request wanted to write;
on SQLite the two processes' commits take turns (store/sqlite_turn.py), so the HTTP process
waited for the worker's commits, fsyncs included. Measured 2026-12-05 at one connection
(`run --worker-process`, SQLite, five runs): 0.8-1.0 worker transactions per itniotech
sendSms, 0.3-1.0 per OpenVox send (its slightly shorter request cycle more often let an
answer's record and the next lease share a commit: the likely reason its split kept up and
itniotech's did not), where the one-process ``run`` merges most of the worker's writes into
its accepts' commits (1.4-1.55 transactions per send in all); gathered for 50 ms, 0.15-0.23
for both, and the HTTP process's wait for the turn about halved. Under load the child leases
every 50 ms what came meanwhile, in larger batches than before; a send waits that much longer
for its line at most.

The pair carries one topic the other way: SMPP outbox rows (receipts, incoming SMS) the
child's commits store, for the SMPP server's deliverers in the parent (services/
smpp_outbox.py). The child's :class:`PipeListener` relays that topic up, the parent's
:class:`PipeNotifier` reads it; each sends only its direction's topics, so nothing echoes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket

from simgate.lease_loop import CALLS, PUSHES, QUEUE, SMPP_OUT, Wakeup

TOPICS = frozenset({QUEUE, PUSHES, CALLS})  # parent → child: work for the worker
UP_TOPICS = frozenset({SMPP_OUT})  # child → parent: work for the HTTP process's SMPP server
# The child's dispatcher is woken for new messages at most once per this while they keep
# coming (module docstring): a lease's wait for the sends of this interval, where a send's
# journey to the line takes seconds anyway.
QUEUE_GATHER_S = 0.05


def wake_pair() -> tuple[socket.socket, socket.socket]:
    """(parent's end, child's end); the child's end is inherited by each child started."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    parent.setblocking(False)
    child.set_inheritable(True)
    return parent, child


class PipeNotifier:
    """Sends this process's wake-ups to the worker child (a :class:`Wakeup` relay)."""

    def __init__(self, sock: socket.socket, wakeup: Wakeup) -> None:
        self._sock = sock
        self._wakeup = wakeup
        self._pending: set[str] = set()
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0  # datagrams sent (tests)

    def start(self) -> None:
        self._wakeup.add_relay(self.relay)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._drain)  # what the child says up

    def stop(self) -> None:
        self._wakeup.remove_relay(self.relay)
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._sock.fileno())
            self._loop = None

    def _drain(self) -> None:
        try:
            topics = _received(self._sock)
        except OSError:  # closing: nothing more will come
            return
        for topic in topics & UP_TOPICS:
            self._wakeup.wake_local(topic)

    def relay(self, topic: str) -> None:
        if topic not in TOPICS:  # the child's own topics (UP_TOPICS) are not sent back
            return
        # Relays are told after the commit that made the work (messaging, voice), so the
        # child's look after this datagram sees it. Coalesced to the end of this loop turn:
        # under load many accepts commit per turn, one datagram says it for all of them.
        self._pending.add(topic)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        topics, self._pending = self._pending, set()
        for topic in topics:
            try:
                self._sock.send(topic.encode())
            except BlockingIOError:  # the child has not read the earlier ones: it will wake
                continue
            except OSError:  # no reader at all (closing): its start-up wakes every loop
                return
            self.sent += 1


class PipeListener:
    """Reads the parent's datagrams in the worker child and wakes the topics' loops."""

    def __init__(self, fd: int, wakeup: Wakeup, *, gather_s: float = QUEUE_GATHER_S) -> None:
        self._sock = socket.socket(fileno=fd)
        self._sock.setblocking(False)
        self._wakeup = wakeup
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gather_s = gather_s
        self._queue_woken = -math.inf  # loop time of the last QUEUE wake-up
        self._queue_held: asyncio.TimerHandle | None = None  # the held one, if any
        self.queue_wakes = 0  # QUEUE wake-ups passed on (tests)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._drain)
        self._wakeup.add_relay(self.relay)
        # What the parent said before this child listened (or while a dead predecessor was
        # not reading) may be unread or lost: look once.
        for topic in sorted(TOPICS):
            self._wakeup.wake_local(topic)

    def _drain(self) -> None:
        try:
            topics = _received(self._sock)
        except OSError:
            self.stop()
            return
        for topic in topics & TOPICS:
            if topic == QUEUE:
                self._wake_queue()
            else:
                self._wakeup.wake_local(topic)

    def _wake_queue(self) -> None:
        """Wake the dispatcher now after a quiet spell, else once :data:`QUEUE_GATHER_S`
        has passed since its last wake-up (module docstring)."""
        if self._queue_held is not None or self._loop is None:
            return  # a wake-up is already held: it will take these messages too
        due = self._queue_woken + self._gather_s
        if self._loop.time() >= due:
            self._pass_queue()
        else:
            self._queue_held = self._loop.call_at(due, self._pass_queue)

    def _pass_queue(self) -> None:
        self._queue_held = None
        if self._loop is None:
            return
        self._queue_woken = self._loop.time()
        self.queue_wakes += 1
        self._wakeup.wake_local(QUEUE)

    def relay(self, topic: str) -> None:
        """The child's commits stored work for the parent (UP_TOPICS): one datagram each.
        Told after the commit (services/smpp_outbox.py), so the parent's look sees it."""
        if topic not in UP_TOPICS:
            return
        with contextlib.suppress(OSError):  # a full buffer: the parent has unread ones
            self._sock.send(topic.encode())

    def stop(self) -> None:
        self._wakeup.remove_relay(self.relay)
        if self._queue_held is not None:
            self._queue_held.cancel()
            self._queue_held = None
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._sock.fileno())
            self._loop = None
        self._sock.close()


def _received(sock: socket.socket) -> set[str]:
    """The topics of every datagram waiting on ``sock`` (OSError: the pair is broken)."""
    topics: set[str] = set()
    while True:
        try:
            data = sock.recv(64)
        except BlockingIOError:
            break
        if not data:
            break
        topics.add(data.decode(errors="replace"))
    return topics
