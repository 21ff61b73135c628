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

The pair carries one topic the other way: SMPP outbox rows (receipts, incoming SMS) the
child's commits store, for the SMPP server's deliverers in the parent (services/
smpp_outbox.py). The child's :class:`PipeListener` relays that topic up, the parent's
:class:`PipeNotifier` reads it; each sends only its direction's topics, so nothing echoes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from simgate.lease_loop import CALLS, PUSHES, QUEUE, SMPP_OUT, Wakeup

TOPICS = frozenset({QUEUE, PUSHES, CALLS})  # parent → child: work for the worker
UP_TOPICS = frozenset({SMPP_OUT})  # child → parent: work for the HTTP process's SMPP server


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

    def __init__(self, fd: int, wakeup: Wakeup) -> None:
        self._sock = socket.socket(fileno=fd)
        self._sock.setblocking(False)
        self._wakeup = wakeup
        self._loop: asyncio.AbstractEventLoop | None = None

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
            self._wakeup.wake_local(topic)

    def relay(self, topic: str) -> None:
        """The child's commits stored work for the parent (UP_TOPICS): one datagram each.
        Told after the commit (services/smpp_outbox.py), so the parent's look sees it."""
        if topic not in UP_TOPICS:
            return
        with contextlib.suppress(OSError):  # a full buffer: the parent has unread ones
            self._sock.send(topic.encode())

    def stop(self) -> None:
        self._wakeup.remove_relay(self.relay)
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
