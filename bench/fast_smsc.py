"""A deliberately minimal SMSC for throughput benchmarks (run as its own process).

    python bench/fast_smsc.py PORT COUNT_FILE

It reads only PDU headers: binds get a positive bind_resp, enquire_link and unbind their
responses, every submit_sm a submit_sm_resp with a fresh hex message id. Nothing is decoded
or stored, so the SMSC costs far less than the clients measured against it. The number of
submit_sm answered is written to COUNT_FILE every 50 ms. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import struct
import sys
from pathlib import Path

_HEAD = struct.Struct(">IIII")
BIND_IDS = {0x01, 0x02, 0x09}
SUBMIT_SM, ENQUIRE_LINK, UNBIND = 0x04, 0x15, 0x06


class Counter:
    answered = 0
    next_id = 0x7C000001


class SmscProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        out = bytearray()
        pos = 0
        buf = self.buf
        close = False
        while len(buf) - pos >= 16:
            length, command, _status, seq = _HEAD.unpack_from(buf, pos)
            if length < 16 or len(buf) - pos < length:
                break
            pos += length
            if command == SUBMIT_SM:
                body = b"%x\x00" % Counter.next_id
                Counter.next_id += 1
                Counter.answered += 1
                out += _HEAD.pack(16 + len(body), 0x80000004, 0, seq) + body
            elif command in BIND_IDS:
                body = b"fastsmsc\x00"
                out += _HEAD.pack(16 + len(body), 0x80000000 | command, 0, seq) + body
            elif command in (ENQUIRE_LINK, UNBIND):
                out += _HEAD.pack(16, 0x80000000 | command, 0, seq)
                close = command == UNBIND
        del buf[:pos]
        if out and self.transport is not None:
            self.transport.write(bytes(out))
        if close and self.transport is not None:
            self.transport.close()


def _write_count(path: Path, n: int) -> None:
    path.write_text(str(n))


async def main(port: int, count_file: Path) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(SmscProtocol, "127.0.0.1", port)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print(f"LISTENING {port}", flush=True)
    while not stop.is_set():
        _write_count(count_file, Counter.answered)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)
    server.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2])))
