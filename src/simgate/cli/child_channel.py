"""Requests from ``simgate run`` to its worker child, and their answers (issue 15).

With ``--worker-process`` the lines run in the child: a port action or a USSD asked over
HTTP (the Dinstar API, the console) must reach the child's line objects, the only ones that
are started. The parent keeps a ``socketpair(AF_UNIX, SOCK_STREAM)`` per child start: no
path or permissions, and it closes when either end's process ends, so a request to a dead
child fails at once instead of waiting for a timeout. The parent's /metrics asks each child
for its samples the same way, on a pair of its own (cli/metrics_share.py).

Not through the database (a command row the child takes): a request is answered while its
HTTP client waits, and a row left by a caller that gave up (child restarting, timeout) would
still be taken and run later: a port reset nobody is waiting for any more. Here a request
lives only as long as its pair: a new child never sees its predecessor's requests.

Frames, both ways: ``seq`` (8 bytes, big-endian), a 4-byte length, that many bytes of JSON.
The parent matches answers to requests by ``seq``; the child answers each request in its own
task (a USSD on a modem waits seconds for the network: other requests need not queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

log = logging.getLogger(__name__)

_HEAD = struct.Struct("!QI")  # seq, length of the JSON that follows
MAX_FRAME = 1024 * 1024
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class ChildGone(ConnectionError):
    """No child answers now: none started yet, it ended, or it is being restarted."""


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """(parent's end, child's end); the child's end is inheritable, for ``pass_fds``."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    child.set_inheritable(True)
    return parent, child


def _frame(seq: int, body: dict[str, Any]) -> bytes:
    data = orjson.dumps(body)
    return _HEAD.pack(seq, len(data)) + data


async def _read_frame(
    reader: asyncio.StreamReader, max_frame: int = MAX_FRAME
) -> tuple[int, dict[str, Any]]:
    seq, size = _HEAD.unpack(await reader.readexactly(_HEAD.size))
    if size > max_frame:
        raise ValueError(f"a frame of {size} bytes")
    body = orjson.loads(await reader.readexactly(size))
    if not isinstance(body, dict):
        raise ValueError("a frame that is not a JSON object")
    return seq, body


class ChildChannel:
    """The parent's side: :meth:`new_pair` before each start of the child, :meth:`ask`.

    ``max_frame``: the largest answer taken (a larger one is read as a broken pair)."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._max_frame = max_frame
        self._sock: socket.socket | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._seq = 0
        # Requests made at once must not each open a stream on the one socket: the second
        # would read what is meant for the first (both readers take frames off one socket).
        self._connecting = asyncio.Lock()

    def new_pair(self) -> socket.socket:
        """A pair for the child about to start; returns its end (close it once started).
        Requests still waiting on the previous child fail with :class:`ChildGone`."""
        self._close()
        self._sock, child = channel_pair()
        return child

    def adopt(self, fd: int) -> None:
        """Ask on an inherited end instead (a child asking its parent, ``fd`` from
        ``channel_pair``'s second socket)."""
        self._close()
        self._sock = socket.socket(fileno=fd)

    def _close(self) -> None:
        self._fail_pending("the worker process ended")
        if self._reader_task is not None:
            self._reader_task.cancel()
            self._reader_task = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        elif self._sock is not None:
            self._sock.close()
        self._sock = None

    def _fail_pending(self, why: str) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ChildGone(why))

    async def close(self) -> None:
        task = self._reader_task
        self._close()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def ask(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """The child's answer; :class:`ChildGone` when no child can answer, TimeoutError
        when it did not within ``timeout_s``."""
        async with self._connecting:
            if self._sock is None:
                raise ChildGone("the worker process has not started")
            if self._writer is None:
                reader, self._writer = await asyncio.open_unix_connection(sock=self._sock)
                self._reader_task = asyncio.create_task(self._read(reader), name="child-channel")
        writer, reading = self._writer, self._reader_task
        if writer is None or writer.is_closing() or reading is None or reading.done():
            raise ChildGone("the worker process ended")  # until the next one starts
        self._seq += 1
        seq = self._seq
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[seq] = fut
        try:
            try:
                writer.write(_frame(seq, request))
                await writer.drain()
            except (OSError, RuntimeError) as exc:  # RuntimeError: uvloop, transport closed
                raise ChildGone(f"the worker process ended: {exc!r}") from None
            return await asyncio.wait_for(fut, timeout_s)
        finally:
            self._pending.pop(seq, None)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                seq, body = await _read_frame(reader, self._max_frame)
                fut = self._pending.get(seq)
                if fut is not None and not fut.done():  # else a caller that gave up
                    fut.set_result(body)
        except (asyncio.IncompleteReadError, OSError, ValueError) as exc:
            self._fail_pending(f"the worker process ended: {exc!r}")


class ChildAnswers:
    """The child's side: answers each request with ``handler``'s dict, in its own task."""

    def __init__(self, fd: int, handler: Handler) -> None:
        self._sock = socket.socket(fileno=fd)
        self._handler = handler
        self._task: asyncio.Task[None] | None = None
        self._answering: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._serve(), name="child-answers")

    async def _serve(self) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=self._sock)
        try:
            while True:
                try:
                    seq, request = await _read_frame(reader)
                except asyncio.IncompleteReadError:  # the parent closed it: it is gone
                    return
                task = asyncio.create_task(self._answer(writer, seq, request))
                self._answering.add(task)
                task.add_done_callback(self._answering.discard)
        except (OSError, ValueError) as exc:
            log.warning("requests from the parent process: %r", exc)
        finally:
            writer.close()

    async def _answer(
        self, writer: asyncio.StreamWriter, seq: int, request: dict[str, Any]
    ) -> None:
        try:
            answer = await self._handler(request)
        except Exception as exc:  # said to the parent, which answers its client with it
            log.exception("request %r from the parent process failed", request.get("op"))
            answer = {"error": "failed", "text": str(exc) or type(exc).__name__}
        if not writer.is_closing():
            writer.write(_frame(seq, answer))  # one write: frames never interleave

    async def stop(self) -> None:
        task, self._task = self._task, None
        for running in list(self._answering):
            running.cancel()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        else:
            self._sock.close()
