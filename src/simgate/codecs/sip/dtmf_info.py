"""DTMF keys carried in SIP INFO bodies (no RFC: the de-facto formats trunks send).

``application/dtmf-relay``: ``Signal=5`` and ``Duration=160`` lines (Cisco, Asterisk);
``application/dtmf``: the key alone. Signals 10 and 11 stand for ``*`` and ``#`` (the RFC 4733
event numbers some senders use).
"""

from __future__ import annotations

KEYS = frozenset("0123456789*#ABCD")
_EVENT_NUMBERS = {"10": "*", "11": "#", "12": "A", "13": "B", "14": "C", "15": "D"}
CONTENT_TYPES = ("application/dtmf-relay", "application/dtmf")


def key_of(content_type: str, body: bytes) -> str:
    """The key an INFO body carries, or "" when it carries none we know."""
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    text = body.decode("utf-8", "replace")
    if kind == "application/dtmf-relay":
        for line in text.splitlines():
            name, eq, value = line.partition("=")
            if eq and name.strip().lower() == "signal":
                return _key(value.strip())
        return ""
    if kind == "application/dtmf":
        return _key(text.strip())
    return ""


def _key(signal: str) -> str:
    signal = _EVENT_NUMBERS.get(signal, signal).upper()
    return signal if signal in KEYS else ""
