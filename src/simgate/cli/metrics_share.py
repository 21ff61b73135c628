"""The children of ``simgate run`` tell the parent their metrics, for one /metrics (issue 15).

Each child (the ``--worker-process`` worker; each ``--workers N`` HTTP process) inherits one
end of a ``socketpair(AF_UNIX, SOCK_STREAM)``: no path, no permissions to get right, and it
closes when either process ends. When /metrics is asked for, the parent sends each child a
request; the child answers with its registry's samples (:class:`MetricsAnswerer`), and the
parent merges them into its own (simgate.metrics.merge).

Frames: a request is ``seq`` (8 bytes, big-endian); an answer is ``seq``, a 4-byte length and
that many bytes of JSON (simgate.metrics.to_json). A reader task in the parent matches answers
to requests by ``seq``, so a child that answers late (a scrape timed out) never shifts the
answers of later scrapes.

Restarts: a child's counters start from zero in each new process. :class:`ChildMetrics` keeps
the counters it last heard from each ended child and adds them to what the running one says,
so a merged counter never goes down while the parent lives (Prometheus would read a drop as a
reset to zero and count the rest again). What a child counted after its last scrape and
before it died is lost, as it is for any process that dies between two scrapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct

from simgate.cli.child_channel import channel_pair
from simgate.metrics import (
    Families,
    Metrics,
    add_counters,
    collect,
    counters_of,
    from_json,
    merge,
    to_json,
)

log = logging.getLogger(__name__)

ANSWER_TIMEOUT_S = 2.0  # a scrape waits this long for a child, then answers without it
_SEQ = struct.Struct("!Q")
_LEN = struct.Struct("!I")
MAX_ANSWER = 64 * 1024 * 1024


class ChildMetrics:
    """One child's samples, across the processes that child slot has had (a MetricsSource).

    :meth:`new_pair` before each start of the child; :meth:`families` when scraped."""

    def __init__(self, timeout_s: float = ANSWER_TIMEOUT_S) -> None:
        self._timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        self._seq = 0
        self._last: Families = {}  # what the running child said last
        self._carried: Families = {}  # the counters of the children before it
        # Scrapes at once must not each open a stream on the one socket (each stream's
        # reader would take the other's answers off it).
        self._connecting = asyncio.Lock()

    def new_pair(self) -> socket.socket:
        """A pair for the child about to start; returns its end (close it once started).
        What the previous child counted is carried from here on."""
        self._retire()
        self._sock, child = channel_pair()
        return child

    def _retire(self) -> None:
        if self._last:
            self._carried = merge(self._carried, [counters_of(self._last)])
            self._last = {}
        self._close()

    def _close(self) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("the child's metrics pair closed"))
        self._pending.clear()
        if self._reader_task is not None:
            self._reader_task.cancel()
            self._reader_task = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        elif self._sock is not None:
            self._sock.close()
        self._sock = None

    async def close(self) -> None:
        task = self._reader_task
        self._close()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def families(self) -> Families:
        try:
            live = from_json(await self._ask())
        except (OSError, TimeoutError, ValueError, RuntimeError) as exc:
            # RuntimeError: uvloop's answer to a write on a transport that closed meanwhile.
            # Gone, restarting or too slow: its counters as last heard (they must not drop),
            # none of its gauges (they would be stale).
            log.debug("no metrics from the child: %r", exc)
            return add_counters(counters_of(self._last), self._carried)
        self._last = live
        return add_counters(live, self._carried)

    async def _ask(self) -> bytes:
        async with self._connecting:
            if self._sock is None:
                raise ConnectionError("no child")
            if self._writer is None:
                reader, self._writer = await asyncio.open_unix_connection(sock=self._sock)
                self._reader_task = asyncio.create_task(self._read(reader), name="child-metrics")
        writer, reading = self._writer, self._reader_task
        if writer is None or writer.is_closing() or reading is None or reading.done():
            raise ConnectionError("the child's end is closed")  # it ended: until the next one
        self._seq += 1
        seq = self._seq
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[seq] = fut
        try:
            writer.write(_SEQ.pack(seq))
            await writer.drain()
            return await asyncio.wait_for(fut, self._timeout_s)
        finally:
            self._pending.pop(seq, None)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                (seq,) = _SEQ.unpack(await reader.readexactly(_SEQ.size))
                (size,) = _LEN.unpack(await reader.readexactly(_LEN.size))
                if size > MAX_ANSWER:
                    raise ValueError(f"a metrics answer of {size} bytes")
                body = await reader.readexactly(size)
                fut = self._pending.get(seq)
                if fut is not None and not fut.done():  # else a scrape that gave up on it
                    fut.set_result(body)
        except (asyncio.IncompleteReadError, OSError, ValueError) as exc:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError(f"the child's metrics pair: {exc!r}"))


class MetricsAnswerer:
    """In a child: answers the parent's requests with this process's samples."""

    def __init__(self, fd: int, metrics: Metrics) -> None:
        self._sock = socket.socket(fileno=fd)
        self._metrics = metrics
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._serve(), name="metrics-answerer")

    async def _serve(self) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=self._sock)
        try:
            while True:
                try:
                    seq = await reader.readexactly(_SEQ.size)
                except asyncio.IncompleteReadError:  # the parent closed it: it is gone
                    return
                body = to_json(collect(self._metrics.registry))
                writer.write(seq + _LEN.pack(len(body)) + body)
                await writer.drain()
        except OSError as exc:
            log.debug("metrics pair to the parent: %r", exc)
        finally:
            writer.close()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        else:
            self._sock.close()
