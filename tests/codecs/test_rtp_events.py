"""RFC 4733 telephone-events: payloads, and one key per event whatever the packets do."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from simgate.codecs.rtp import decode
from simgate.codecs.rtp_events import EventError, KeyDetector, ToneEvent, decode_event, encode_event

PCAPS = Path("/usr/share/sip-tester")


def test_payload_fields() -> None:
    # RFC 4733 §2.3: event 11 (#), E bit, volume 10, duration 1280.
    ev = decode_event(bytes.fromhex("0b8a0500"))
    assert ev == ToneEvent(event=11, end=True, volume=10, duration=1280)
    assert ev.key == "#"
    assert encode_event(ev) == bytes.fromhex("0b8a0500")
    assert decode_event(bytes.fromhex("10000000")).key == ""  # 16 = flash, not a key


def test_a_short_payload_is_an_error() -> None:
    with pytest.raises(EventError):
        decode_event(b"\x01\x80")


def packet(
    event: int, *, ts: int, end: bool, duration: int = 160, ssrc: int = 7
) -> dict[str, object]:
    payload = encode_event(ToneEvent(event, end, 10, duration))
    return {"ssrc": ssrc, "timestamp": ts, "payload": payload}


def test_the_three_end_packets_and_duplicates_count_once() -> None:
    keys = KeyDetector()
    stream = [
        packet(5, ts=100, end=False),
        packet(5, ts=100, end=False),  # a duplicate
        packet(5, ts=100, end=True),
        packet(5, ts=100, end=True),
        packet(5, ts=100, end=True),
        packet(5, ts=900, end=False),
        packet(5, ts=900, end=True),  # the same key again
    ]
    assert "".join(keys.feed(**p) for p in stream) == "55"  # type: ignore[arg-type]


def test_an_event_whose_end_packets_were_lost_counts_when_the_next_begins() -> None:
    keys = KeyDetector()
    assert keys.feed(**packet(1, ts=100, end=False)) == ""  # type: ignore[arg-type]
    assert keys.feed(**packet(2, ts=500, end=True)) == "12"  # type: ignore[arg-type]
    assert keys.feed(**packet(3, ts=900, end=False)) == ""  # type: ignore[arg-type]
    assert keys.flush() == "3"
    assert keys.flush() == ""


def test_sipps_captured_keys() -> None:
    """sipp's own RFC 4733 captures (Debian sip-tester) decode to their keys, once each."""
    names = {"1": "1", "5": "5", "pound": "#", "star": "*"}
    if not (PCAPS / "dtmf_2833_1.pcap").exists():
        pytest.skip("sip-tester's pcaps are not installed (the peer tests need them)")
    keys = KeyDetector()
    got = ""
    for name in names:
        for rtp in _pcap_udp_payloads(PCAPS / f"dtmf_2833_{name}.pcap"):
            p = decode(rtp)
            got += keys.feed(ssrc=p.ssrc, timestamp=p.timestamp, payload=p.payload)
    assert got == "15#*"


def _pcap_udp_payloads(path: Path) -> list[bytes]:
    """UDP payloads of a classic pcap of Ethernet/IPv4/UDP frames."""
    data = path.read_bytes()
    assert data[:4] == bytes.fromhex("d4c3b2a1")  # little-endian pcap
    out, off = [], 24
    while off < len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        frame = data[off + 16 : off + 16 + incl]
        ihl = (frame[14] & 0x0F) * 4
        out.append(frame[14 + ihl + 8 :])
        off += 16 + incl
    return out
