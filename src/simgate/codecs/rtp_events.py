"""RFC 4733 telephone-events (DTMF) in RTP: payload decoding and key detection.

One key press is one event: a stream of packets sharing one RTP timestamp (the event's start,
§2.5.1.2), the last ones with the E (end) bit, sent three times (§2.5.1.4). Packets may be
duplicated or lost, so :class:`KeyDetector` reports a key once per (SSRC, timestamp): at its
first end packet, or at the first packet of a later event when every end packet was lost.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Event codes 0-15 (RFC 4733 §3.2 Table 7); 16 is "flash", not a key.
KEYS = "0123456789*#ABCD"
FLASH = 16
_PAYLOAD = struct.Struct("!BBH")


class EventError(ValueError):
    """Not a telephone-event payload (RFC 4733 §2.3)."""


@dataclass(frozen=True, slots=True)
class ToneEvent:
    event: int
    end: bool
    volume: int  # -dBm0, 0..63
    duration: int  # timestamp units since the event began

    @property
    def key(self) -> str:
        """The DTMF key, or "" for an event that is not one (flash, other tones)."""
        return KEYS[self.event] if self.event < len(KEYS) else ""


def decode_event(payload: bytes) -> ToneEvent:
    if len(payload) < _PAYLOAD.size:
        raise EventError(f"telephone-event payload of {len(payload)} bytes (needs 4)")
    event, flags, duration = _PAYLOAD.unpack_from(payload)
    return ToneEvent(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)


def encode_event(ev: ToneEvent) -> bytes:
    """The payload of ``ev`` (tests and fakes send events with it)."""
    return _PAYLOAD.pack(ev.event, (0x80 if ev.end else 0) | (ev.volume & 0x3F), ev.duration)


class KeyDetector:
    """Feed every telephone-event packet; :meth:`feed` answers the key once per event."""

    def __init__(self) -> None:
        # (ssrc, timestamp) of reported events, oldest first (a dict keeps insertion order)
        self._reported: dict[tuple[int, int], None] = {}
        self._open: tuple[int, int, str] | None = None  # an event seen without its end yet

    def feed(self, *, ssrc: int, timestamp: int, payload: bytes) -> str:
        """The keys this packet completes, in order ("" for none): its own at its first end
        packet, preceded by an earlier event's whose end packets were all lost."""
        ev = decode_event(payload)
        ident = (ssrc, timestamp)
        if ident in self._reported:
            return ""  # a duplicate, or the 2nd/3rd end packet
        late = ""
        if self._open is not None and self._open[:2] != ident:
            late = self._finish(self._open)
        if ev.end:
            return late + self._finish((ssrc, timestamp, ev.key))
        self._open = (ssrc, timestamp, ev.key)
        return late

    def flush(self) -> str:
        """The key of an event still open (its end packets lost, the stream over)."""
        return self._finish(self._open) if self._open is not None else ""

    def _finish(self, event: tuple[int, int, str]) -> str:
        ssrc, timestamp, key = event
        self._open = None
        self._reported[(ssrc, timestamp)] = None
        if len(self._reported) > 256:  # only recent events can repeat
            del self._reported[next(iter(self._reported))]
        return key
