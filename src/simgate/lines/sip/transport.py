"""SIP over UDP or TCP to one trunk (RFC 3261 §18): send messages, hand received ones on.

Every request goes to the trunk (an outbound proxy, §8.1.2); what comes back is parsed and
given to ``on_message``. The whole trace is logged at debug level (logger
``simgate.lines.sip.trace``), one record per message, as the issue's "call trace".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from simgate.codecs.sip.message import SipError, SipMessage, StreamFramer, parse

trace = logging.getLogger("simgate.lines.sip.trace")
log = logging.getLogger(__name__)

Handler = Callable[[SipMessage], None]


class SipTransport:
    def __init__(
        self,
        *,
        kind: str,
        proxy: tuple[str, int],
        local_host: str,
        local_port: int,
        on_message: Handler,
    ) -> None:
        self.kind = kind  # "udp" or "tcp"
        self._proxy = proxy
        self._local = (local_host, local_port)
        self._on_message = on_message
        self._udp: asyncio.DatagramTransport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self.local_address: tuple[str, int] = self._local

    @property
    def reliable(self) -> bool:
        """TCP: no retransmissions (RFC 3261 §17.1.1.2 Timer A is for UDP only)."""
        return self.kind == "tcp"

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        if self.kind == "udp":
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self._received), local_addr=self._local
            )
            self._udp = udp
            self.local_address = udp.get_extra_info("sockname")[:2]
            return
        reader, writer = await asyncio.open_connection(
            *self._proxy, local_addr=self._local if self._local[1] else None
        )
        self._writer = writer
        self.local_address = writer.get_extra_info("sockname")[:2]
        self._reader_task = asyncio.create_task(self._read(reader), name="sip-tcp-reader")

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)
            self._reader_task = None

    def send(self, msg: SipMessage) -> None:
        data = msg.encode()
        if trace.isEnabledFor(logging.DEBUG):
            trace.debug("SIP >>> %s:%s\n%s", *self._proxy, data.decode("utf-8", "replace"))
        if self._udp is not None:
            self._udp.sendto(data, self._proxy)
        elif self._writer is not None:
            self._writer.write(data)
        else:
            raise ConnectionError("the SIP transport is closed")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        framer = StreamFramer()
        try:
            while data := await reader.read(65536):
                for frame in framer.feed(data):
                    self._received(frame)
        except SipError as exc:
            log.error("SIP stream from %s:%s is broken: %s", *self._proxy, exc)
        except ConnectionError as exc:
            log.error("SIP connection to %s:%s lost: %s", *self._proxy, exc)
        else:
            log.error("SIP connection to %s:%s closed by the far end", *self._proxy)

    def _received(self, data: bytes) -> None:
        if trace.isEnabledFor(logging.DEBUG):
            trace.debug("SIP <<< %s:%s\n%s", *self._proxy, data.decode("utf-8", "replace"))
        if not data.strip():
            return  # a keep-alive
        try:
            msg = parse(data)
        except SipError as exc:
            log.warning("dropped an unreadable SIP message: %s", exc)
            return
        self._on_message(msg)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, on_data: Callable[[bytes], None]) -> None:
        self._on_data = on_data

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._on_data(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the INVITE's timer ends the call (408).
        log.debug("SIP socket error: %s", exc)
