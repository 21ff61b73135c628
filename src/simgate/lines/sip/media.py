"""RTP for the SIP line (RFC 3550, RFC 3551, RFC 4733): ports, paced sending, received keys.

* :class:`PortPool`: the even ports of ``rtp_ports`` (RTCP would take the odd one, §11).
* :class:`RtpStream`: one call's socket. It latches onto the address the far end sends from
  (symmetric RTP, RFC 4961), reads RFC 4733 telephone-events into keys, and counts packets
  lost from the sequence numbers (RFC 3550 §A.3).
* :class:`Pacer`: one task per line sends every call's next 20 ms packet on the monotonic
  clock, so N calls cost one timer, not N (a late tick catches up: 50 packets/s on average).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from simgate.codecs import g711
from simgate.codecs.rtp import RtpError, RtpPacket, decode
from simgate.codecs.rtp_events import EventError, KeyDetector

log = logging.getLogger(__name__)

PTIME_S = 0.020
SAMPLES_PER_PACKET = 160  # 20 ms at 8 kHz (RFC 3551 §4.5.14)
SILENCE = {"PCMU": b"\xff", "PCMA": b"\xd5"}  # the code of linear 0


class PortsExhausted(RuntimeError):
    """Every RTP port of the line's range is taken."""


class PortPool:
    def __init__(self, lo: int, hi: int) -> None:
        first = lo + lo % 2
        self._free = list(range(first, hi + 1, 2))
        self._range = f"{lo}-{hi}"

    def take(self) -> int:
        if not self._free:
            raise PortsExhausted(f"RTP port range {self._range} is exhausted")
        return self._free.pop(0)

    def give(self, port: int) -> None:
        self._free.append(port)

    @property
    def free(self) -> int:
        return len(self._free)


@dataclass
class RtpStats:
    sent: int = 0
    received: int = 0
    lost: int = 0


class RtpStream(asyncio.DatagramProtocol):
    """One call's RTP socket: ``remote`` is where we send; keys go to ``on_key``."""

    def __init__(self, *, on_key: Callable[[str], None], stats: RtpStats) -> None:
        self.remote: tuple[str, int] | None = None
        self.event_pt: int | None = None
        self.latched = False
        self.on_key = on_key  # set by the call once it exists
        self._keys = KeyDetector()
        self._udp: asyncio.DatagramTransport | None = None
        self._stats = stats
        self._base_seq: int | None = None
        self._max_seq = 0  # extended (cycles << 16 | seq)
        self._received = 0

    @classmethod
    async def bind(
        cls, pool: PortPool, host: str, *, on_key: Callable[[str], None], stats: RtpStats
    ) -> tuple[RtpStream, int]:
        """A stream on the first free port of ``pool`` that the OS lets us bind."""
        loop = asyncio.get_running_loop()
        while True:
            port = pool.take()  # raises PortsExhausted
            try:
                _, stream = await loop.create_datagram_endpoint(
                    lambda: cls(on_key=on_key, stats=stats), local_addr=(host, port)
                )
            except OSError:
                log.warning("RTP port %d is in use outside simgate; skipping it", port)
                continue  # taken by another program: leave it out of the pool
            return stream, port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: on 3.11 the selector loop's datagram transport is
        # not a subclass of asyncio.DatagramTransport (the assertion peers.md warns about).
        self._udp = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        try:
            packet = decode(data)
        except RtpError:
            return
        host, port = addr[0], addr[1]
        assert isinstance(host, str)
        assert isinstance(port, int)
        if not self.latched:  # symmetric RTP: answer where the far end sends from
            self.remote = (host, port)
            self.latched = True
        self._count(packet.sequence)
        if self.event_pt is not None and packet.payload_type == self.event_pt:
            try:
                keys = self._keys.feed(
                    ssrc=packet.ssrc, timestamp=packet.timestamp, payload=packet.payload
                )
            except EventError:
                return
            for key in keys:
                if key:
                    self.on_key(key)

    def _count(self, seq: int) -> None:
        self._received += 1
        self._stats.received += 1
        if self._base_seq is None:
            self._base_seq = self._max_seq = seq
            return
        last = self._max_seq & 0xFFFF
        delta = (seq - last) & 0xFFFF
        if 0 < delta < 0x8000:  # newer (with wrap): RFC 3550 §A.1 in short
            self._max_seq += delta

    @property
    def lost(self) -> int:
        if self._base_seq is None:
            return 0
        return max(0, self._max_seq - self._base_seq + 1 - self._received)

    def send(self, data: bytes) -> None:
        if self._udp is not None and self.remote is not None:
            self._udp.sendto(data, self.remote)
            self._stats.sent += 1

    def close(self) -> None:
        tail = self._keys.flush()
        if tail:
            self.on_key(tail)
        self._stats.lost += self.lost
        if self._udp is not None:
            self._udp.close()
            self._udp = None


@dataclass(eq=False)  # hashed by identity: the pacer keeps a set of them
class Player:
    """One call's audio as packets: ``loops`` times ``payloads``, then ``on_done``."""

    stream: RtpStream
    payloads: list[bytes]
    payload_type: int
    loops: int
    on_done: Callable[[], None]
    ssrc: int = field(default_factory=lambda: secrets.randbits(32))
    sequence: int = field(default_factory=lambda: secrets.randbits(16))
    timestamp: int = field(default_factory=lambda: secrets.randbits(32))
    started: float = 0.0
    sent: int = 0

    @property
    def total(self) -> int:
        return len(self.payloads) * self.loops

    def send_due(self, now: float) -> bool:
        """Send the packets due by ``now``; True when the last one is out."""
        due = min(self.total, int((now - self.started) / PTIME_S) + 1)
        while self.sent < due:
            payload = self.payloads[self.sent % len(self.payloads)]
            packet = RtpPacket(
                payload_type=self.payload_type,
                sequence=self.sequence + self.sent,
                timestamp=self.timestamp + self.sent * SAMPLES_PER_PACKET,
                ssrc=self.ssrc,
                payload=payload,
                marker=self.sent == 0,  # the start of a talkspurt (RFC 3551 §4.1)
            )
            self.stream.send(packet.encode())
            self.sent += 1
        return self.sent >= self.total


def packetize(pcm: bytes, codec: str) -> list[bytes]:
    """s16le 8 kHz audio as G.711 payloads of 160 samples, the last padded with silence."""
    encoded = g711.ENCODERS[codec](pcm)
    step = SAMPLES_PER_PACKET
    payloads = [encoded[i : i + step] for i in range(0, len(encoded), step)]
    if payloads and len(payloads[-1]) < step:
        payloads[-1] += SILENCE[codec] * (step - len(payloads[-1]))
    return payloads


class Pacer:
    """Sends every playing call's packets from one task on the event loop's monotonic clock."""

    def __init__(self) -> None:
        self._players: set[Player] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, player: Player) -> None:
        loop = asyncio.get_running_loop()
        player.started = loop.time()
        done = player.send_due(player.started)  # the first packet at once
        if done:
            player.on_done()
            return
        self._players.add(player)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="sip-rtp-pacer")

    def remove(self, player: Player) -> None:
        self._players.discard(player)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        tick = loop.time()
        while self._players:
            tick += PTIME_S
            delay = tick - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                tick = loop.time()  # far behind (a stalled loop): do not burst-sleep zero
            now = loop.time()
            for player in list(self._players):
                try:
                    done = player.send_due(now)
                except OSError as exc:
                    log.warning("RTP send failed: %s", exc)
                    done = True
                if done:
                    self._players.discard(player)
                    player.on_done()

    async def close(self) -> None:
        self._players.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
