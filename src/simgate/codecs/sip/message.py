"""SIP messages (RFC 3261 §7): parse, serialise, and frame a TCP stream by Content-Length.

Headers keep their order and their case as received; lookups fold case and the compact forms
(§7.3.3). Only what a UAC reads is interpreted (status, CSeq, tags, Via branch, Contact); the
rest is carried as text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Compact header names (RFC 3261 §7.3.3, §20) → their full lowercase names.
COMPACT = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
}
VERSION = "SIP/2.0"
MAX_HEADER_BYTES = 16 * 1024  # a longer head is not a message we can use (TCP framing)


class SipError(ValueError):
    """Not a SIP message we can read (RFC 3261 §7)."""


def _key(name: str) -> str:
    low = name.strip().lower()
    return COMPACT.get(low, low)


@dataclass
class SipMessage:
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def get(self, name: str, default: str = "") -> str:
        """The first value of header ``name`` (any case, compact or full form)."""
        key = _key(name)
        for n, v in self.headers:
            if _key(n) == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, comma-separated lists split (for Via, Route...)."""
        key = _key(name)
        out: list[str] = []
        for n, v in self.headers:
            if _key(n) == key:
                out.extend(_split_commas(v))
        return out

    @property
    def call_id(self) -> str:
        return self.get("call-id")

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = self.get("cseq").strip().partition(" ")
        try:
            return int(number), method.strip().upper()
        except ValueError:
            raise SipError(f"bad CSeq {self.get('cseq')!r}") from None

    def _head_lines(self) -> list[str]:
        raise NotImplementedError

    def encode(self) -> bytes:
        lines = self._head_lines()
        lines += [f"{n}: {v}" for n, v in self.headers if _key(n) != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class SipRequest(SipMessage):
    method: str = ""
    uri: str = ""

    def _head_lines(self) -> list[str]:
        return [f"{self.method} {self.uri} {VERSION}"]


@dataclass
class SipResponse(SipMessage):
    status: int = 0
    reason: str = ""

    def _head_lines(self) -> list[str]:
        return [f"{VERSION} {self.status} {self.reason}"]


def parse(data: bytes) -> SipRequest | SipResponse:
    """One whole SIP message (a UDP datagram, or a frame from :class:`StreamFramer`)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")  # bare LF, tolerated (§7.5)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipError("SIP head is not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[0]:
        lines.pop(0)  # CRLFs before the start line are keep-alives (§7.5)
    if not lines:
        raise SipError("empty SIP message")
    start, *rest = lines
    headers: list[tuple[str, str]] = []
    for line in rest:
        if line[:1] in (" ", "\t") and headers:  # folded continuation (§7.3.1)
            n, v = headers[-1]
            headers[-1] = (n, f"{v} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise SipError(f"bad SIP header line {line[:80]!r}")
        headers.append((name.strip(), value.strip()))
    msg: SipRequest | SipResponse
    parts = start.split(" ", 2)
    if start.startswith(VERSION + " "):
        if len(parts) < 2 or not parts[1].isdigit() or len(parts[1]) != 3:
            raise SipError(f"bad status line {start[:80]!r}")
        msg = SipResponse(headers, b"", int(parts[1]), parts[2] if len(parts) > 2 else "")
    elif len(parts) == 3 and parts[2] == VERSION and parts[0].isalpha():
        msg = SipRequest(headers, b"", parts[0].upper(), parts[1])
    else:
        raise SipError(f"bad start line {start[:80]!r}")
    length = msg.get("content-length")
    if length:
        if not length.strip().isdigit():
            raise SipError(f"bad Content-Length {length!r}")
        body = body[: int(length)]
    msg.body = body
    return msg


class StreamFramer:
    """SIP over TCP (RFC 3261 §18.3): bytes in, whole messages out, by Content-Length."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames: list[bytes] = []
        while True:
            while self._buffer[:2] == b"\r\n":
                del self._buffer[:2]  # keep-alive CRLFs between messages (RFC 5626 §3.5.1)
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEADER_BYTES:
                    raise SipError("SIP head longer than 16 KiB on the stream")
                return frames
            head = parse(bytes(self._buffer[: end + 4]))
            length_text = head.get("content-length", "0").strip()
            if not length_text.isdigit():
                raise SipError("a SIP message on a stream needs Content-Length (§18.3)")
            total = end + 4 + int(length_text)
            if len(self._buffer) < total:
                return frames
            frames.append(bytes(self._buffer[:total]))
            del self._buffer[:total]


def _split_commas(value: str) -> list[str]:
    """Split a header value at commas outside quotes and angle brackets (§7.3.1)."""
    out: list[str] = []
    depth, quoted, start = 0, False, 0
    for i, ch in enumerate(value):
        if ch == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        elif ch == "," and not quoted and depth == 0:
            out.append(value[start:i].strip())
            start = i + 1
    out.append(value[start:].strip())
    return [v for v in out if v]


def header_params(value: str) -> dict[str, str]:
    """The ``;name=value`` parameters after a name-addr or Via (``tag``, ``branch``...)."""
    _, _, after = value.rpartition(">") if ">" in value else ("", "", value)
    params: dict[str, str] = {}
    for part in after.split(";")[1:]:
        name, _, val = part.partition("=")
        params[name.strip().lower()] = val.strip().strip('"')
    return params


def addr_uri(value: str) -> str:
    """The URI of a name-addr (``"Bob" <sip:bob@host>;tag=1`` → ``sip:bob@host``)."""
    if "<" in value:
        return value[value.index("<") + 1 : value.index(">")].strip()
    return value.split(";", maxsplit=1)[0].strip()
