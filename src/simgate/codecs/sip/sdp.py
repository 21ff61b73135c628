"""SDP for one audio stream (RFC 4566), offer/answer (RFC 3264): our offer, the far end's answer.

We offer the line's G.711 codecs (RFC 3551 static types 0 and 8), telephone-event on a
dynamic type with events 0-16 (RFC 4733 §7.1.1) and ptime 20. From the answer we take the
address and port RTP goes to, the first codec both sides have (§6.1: the answerer's order),
and the telephone-event type it chose.
"""

from __future__ import annotations

from dataclasses import dataclass

from simgate.codecs.g711 import PAYLOAD_TYPES

TELEPHONE_EVENT_PT = 101
PTIME_MS = 20


class SdpError(ValueError):
    """An answer we cannot use (no audio, no common codec, no address)."""


@dataclass(frozen=True, slots=True)
class MediaAnswer:
    address: str
    port: int
    codec: str  # "PCMU" or "PCMA"
    payload_type: int
    event_pt: int | None  # None = the far end takes no RFC 4733 events


def offer(*, address: str, port: int, codecs: tuple[str, ...], session_id: int) -> bytes:
    types = [PAYLOAD_TYPES[c] for c in codecs]
    fmt = " ".join(str(t) for t in [*types, TELEPHONE_EVENT_PT])
    lines = [
        "v=0",
        f"o=simgate {session_id} {session_id} IN IP4 {address}",
        "s=simgate",
        f"c=IN IP4 {address}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {fmt}",
        *(f"a=rtpmap:{PAYLOAD_TYPES[c]} {c}/8000" for c in codecs),
        f"a=rtpmap:{TELEPHONE_EVENT_PT} telephone-event/8000",
        f"a=fmtp:{TELEPHONE_EVENT_PT} 0-16",
        f"a=ptime:{PTIME_MS}",
        "a=sendrecv",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def parse_answer(body: bytes, *, offered: tuple[str, ...]) -> MediaAnswer:
    session_addr = ""
    media_addr = ""
    port = -1
    formats: list[int] = []
    names: dict[int, str] = {}
    in_audio = False
    seen_audio = False
    for raw in body.decode("utf-8", "replace").splitlines():
        kind, eq, value = raw.strip().partition("=")
        if not eq:
            continue
        if kind == "m":
            in_audio = value.startswith("audio ") and not seen_audio
            if in_audio:
                seen_audio = True
                fields = value.split()
                if len(fields) < 4 or not fields[1].split("/")[0].isdigit():
                    raise SdpError(f"bad m= line {raw!r}")
                port = int(fields[1].split("/")[0])
                formats = [int(f) for f in fields[3:] if f.isdigit()]
        elif kind == "c":
            fields = value.split()
            addr = fields[2].split("/")[0] if len(fields) >= 3 else ""
            if in_audio:
                media_addr = addr
            elif not seen_audio:
                session_addr = addr
        elif kind == "a" and in_audio and value.startswith("rtpmap:"):
            pt_text, _, encoding = value[len("rtpmap:") :].partition(" ")
            if pt_text.isdigit():
                names[int(pt_text)] = encoding.split("/")[0].strip()
    if not seen_audio:
        raise SdpError("the answer has no audio stream")
    if port == 0:
        raise SdpError("the far end rejected the audio stream (port 0)")
    address = media_addr or session_addr
    if not address:
        raise SdpError("the answer has no connection address")
    static = {pt: name for name, pt in PAYLOAD_TYPES.items()}
    event_pt = next((pt for pt in formats if names.get(pt, "").lower() == "telephone-event"), None)
    for pt in formats:
        name = names.get(pt, static.get(pt, "")).upper()
        if name in offered:
            return MediaAnswer(address, port, name, PAYLOAD_TYPES[name], event_pt)
    raise SdpError(f"no common codec: offered {', '.join(offered)}, answered {formats}")
