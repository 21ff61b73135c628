"""RTP for the SIP line on loopback sockets: ports, packets, symmetric RTP, keys, loss."""

from __future__ import annotations

import asyncio
import socket

import pytest

from simgate.codecs.rtp import RtpPacket, decode
from simgate.codecs.rtp_events import ToneEvent, encode_event
from simgate.lines.sip.media import (
    Pacer,
    Player,
    PortPool,
    PortsExhausted,
    RtpStats,
    RtpStream,
    packetize,
)
from tests.support.sipp import free_udp_port


def test_the_pool_hands_out_even_ports_and_says_when_it_is_exhausted() -> None:
    pool = PortPool(20001, 20005)
    assert [pool.take(), pool.take()] == [20002, 20004]
    with pytest.raises(PortsExhausted, match="RTP port range 20001-20005 is exhausted"):
        pool.take()
    pool.give(20002)
    assert pool.take() == 20002


def test_packetize_pads_the_last_packet_with_silence() -> None:
    payloads = packetize(b"\x00\x00" * 200, "PCMU")  # 200 samples: 160 + 40
    assert [len(p) for p in payloads] == [160, 160]
    assert payloads[1][40:] == b"\xff" * 120  # µ-law's zero
    assert packetize(b"", "PCMA") == []


async def test_a_port_in_use_elsewhere_is_skipped() -> None:
    taken = free_udp_port() & ~1
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        blocker.bind(("127.0.0.1", taken))
    except OSError:
        pytest.skip("the port was taken meanwhile")
    try:
        pool = PortPool(taken, taken + 2)
        stream, port = await RtpStream.bind(pool, "127.0.0.1", on_key=print, stats=RtpStats())
        assert port == taken + 2
        stream.close()
        with pytest.raises(PortsExhausted):  # the blocked one left the pool
            await RtpStream.bind(pool, "127.0.0.1", on_key=print, stats=RtpStats())
    finally:
        blocker.close()


async def test_symmetric_rtp_keys_and_loss() -> None:
    keys: list[str] = []
    stats = RtpStats()
    first = free_udp_port() & ~1
    pool = PortPool(first, first + 10)
    stream, port = await RtpStream.bind(pool, "127.0.0.1", on_key=keys.append, stats=stats)
    stream.remote = ("127.0.0.1", 9)  # what the SDP said
    stream.event_pt = 101
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(("127.0.0.1", 0))
    far.setblocking(False)
    try:
        for seq, end in ((10, False), (11, True), (11, True), (14, True)):  # 12, 13 lost
            ev = encode_event(ToneEvent(5, end, 10, 800))
            far.sendto(RtpPacket(101, seq, 1000, 42, ev).encode(), ("127.0.0.1", port))
        for _ in range(50):
            await asyncio.sleep(0.01)
            if stats.received == 4:
                break
        assert stream.remote == far.getsockname()  # latched onto where the far end sends from
        assert keys == ["5"]  # one key, whatever the repeats
        stream.send(b"x" * 12)
        await asyncio.sleep(0.05)
        assert far.recv(100) == b"x" * 12
        # RFC 3550 §A.3: expected 10..14 = 5, received 4 (a duplicate counts): 1 lost.
        assert stream.lost == 1
    finally:
        stream.close()
        far.close()
    assert (stats.sent, stats.received, stats.lost) == (1, 4, 1)


async def test_the_pacer_sends_a_packet_every_20_ms_with_running_headers() -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    first = free_udp_port() & ~1
    pool = PortPool(first, first + 10)
    stream, _ = await RtpStream.bind(pool, "127.0.0.1", on_key=print, stats=RtpStats())
    stream.remote = sink.getsockname()
    done = asyncio.Event()
    pacer = Pacer()
    player = Player(stream, [b"a" * 160, b"b" * 160], 8, loops=3, on_done=done.set)
    loop = asyncio.get_running_loop()
    started = loop.time()
    pacer.add(player)
    await asyncio.wait_for(done.wait(), 5)
    took = loop.time() - started
    await asyncio.sleep(0.02)
    got = []
    while True:
        try:
            got.append(decode(sink.recv(2048)))
        except BlockingIOError:
            break
    await pacer.close()
    stream.close()
    sink.close()
    assert [p.payload[:1] for p in got] == [b"a", b"b"] * 3
    assert [p.timestamp - got[0].timestamp for p in got] == [0, 160, 320, 480, 640, 800]
    assert [p.marker for p in got] == [True] + [False] * 5
    assert took >= 0.1  # six packets: the last one 100 ms after the first, not at once
