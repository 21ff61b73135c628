"""SlowSmsc: a named fake SMSC that works on one submit_sm at a time, ``gap`` seconds each.

An SMSC slower than the client: it answers its submits in order, one every ``gap``
seconds. Just before each answer it notes how many submits it holds (``held_at_answer``):
a client that refills its window as soon as an answer arrives has a full window there at
every answer (the refill has ``gap`` to arrive); one that waits for several answers, or for
a batch, shows fewer. It reads PDU headers only (as bench/fast_smsc.py does).
``nagle=True`` leaves Nagle's algorithm on for its answers, as node's sockets do.
Binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import struct

_HEAD = struct.Struct(">IIII")
_BINDS = {0x01, 0x02, 0x09}
_SUBMIT_SM, _ENQUIRE_LINK, _UNBIND = 0x04, 0x15, 0x06


class SlowSmsc:
    def __init__(self, *, gap: float, nagle: bool = False) -> None:
        self.gap = gap
        self.nagle = nagle
        self.held_at_answer: list[int] = []
        self.answered = 0
        self._queue: collections.deque[tuple[_Conn, int]] = collections.deque()
        self._arrived = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._worker: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SlowSmsc:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Conn(self), "127.0.0.1", 0)
        self._worker = asyncio.create_task(self._work())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._server is not None:
            self._server.close()

    def take(self, conn: _Conn, seq: int) -> None:
        self._queue.append((conn, seq))
        self._arrived.set()

    async def _work(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            while self._queue:
                await asyncio.sleep(self.gap)
                self.held_at_answer.append(len(self._queue))
                conn, seq = self._queue.popleft()
                self.answered += 1
                conn.answer(seq)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])


class _Conn(asyncio.Protocol):
    def __init__(self, smsc: SlowSmsc) -> None:
        self.smsc = smsc
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.next_id = 0x5C000001

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if self.smsc.nagle and sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 16:
            length, command, _status, seq = _HEAD.unpack_from(self.buf)
            if len(self.buf) < length:
                break
            del self.buf[:length]
            if command == _SUBMIT_SM:
                self.smsc.take(self, seq)
            elif command in _BINDS:
                self._write(0x80000000 | command, seq, b"slowsmsc\x00")
            elif command in (_ENQUIRE_LINK, _UNBIND):
                self._write(0x80000000 | command, seq, b"")

    def answer(self, seq: int) -> None:
        self._write(0x80000004, seq, b"%x\x00" % self.next_id)
        self.next_id += 1

    def _write(self, command: int, seq: int, body: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_HEAD.pack(16 + len(body), command, 0, seq) + body)
