"""A sans-IO AT command engine for GSM modems (3GPP TS 27.007, TS 27.005, V.250).

Bytes in (``receive_data``), events out; bytes to write collect in ``data_to_send()``;
time comes in as ``now_ms`` arguments and ``tick``. One command is outstanding at a time
(a modem answers in order and mixes in unsolicited result codes, URCs): a second ``send``
while one is pending raises :class:`AtBusy`.

What the engine tells apart (V.250 §5.7, TS 27.007 §9.2, TS 27.005 §3.2.5):

* final results: ``OK``, ``ERROR``, ``+CME ERROR: n``, ``+CMS ERROR: n`` and the call
  results (``NO CARRIER``, ``BUSY``...), plus Huawei's ``COMMAND NOT SUPPORT``;
* the ``> `` prompt of ``+CMGS``/``+CMGW`` (TS 27.005 §3.5.1), which has no line end: the
  engine writes the PDU and Ctrl-Z itself when it sees it;
* URCs, routed apart from answers: ``+CMTI``, ``+CDSI``, ``+CUSD``, ``+CREG``..., ``RING``,
  vendor noise (Huawei ``^RSSI``, ``^BOOT``, ``^MODE``: any ``^`` line). ``+CMT`` and
  ``+CDS`` carry their PDU on the next line (TS 27.005 §3.4.1), so they are two-line URCs.
  A URC-looking line is an answer when the command asked for it (``AT+CREG?`` → ``+CREG:``);
* echo (before ``ATE0`` takes effect) is dropped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "AtBusy",
    "AtEngine",
    "Event",
    "Noise",
    "Response",
    "Timeout",
    "Urc",
]

CTRL_Z = b"\x1a"
_FINAL_OK = frozenset({"OK"})
_FINAL_FAIL = frozenset(
    {"ERROR", "NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE", "COMMAND NOT SUPPORT"}
)
# URCs whose information follows on a second line: the PDU (TS 27.005 §3.4.1 <pdu> mode).
_TWO_LINE = frozenset({"+CMT", "+CDS", "+CBM"})
_URC_PREFIXES = frozenset(
    {
        "+CMTI",
        "+CMT",
        "+CDS",
        "+CDSI",
        "+CBM",
        "+CUSD",
        "+CREG",
        "+CGREG",
        "+CEREG",
        "+CLIP",
        "+CRING",
        "+CMGRMI",
        "RING",
    }
)
MAX_LINE = 4096  # a line longer than any PDU line: garbage on the wire, cut off


class AtBusy(RuntimeError):
    """A command was sent while another one is still waiting for its final result."""


class ErrorKind(enum.Enum):
    NONE = "none"
    ERROR = "error"  # plain ERROR (or a call result / COMMAND NOT SUPPORT)
    CME = "cme"  # +CME ERROR: n (TS 27.007 §9.2)
    CMS = "cms"  # +CMS ERROR: n (TS 27.005 §3.2.5)


@dataclass(frozen=True, slots=True)
class Response:
    """The final result of a command, with the information lines it answered with."""

    command: str
    lines: tuple[str, ...]
    final: str
    kind: ErrorKind = ErrorKind.NONE
    code: int | None = None  # the n of +CME/+CMS ERROR: n (None when given as text)

    @property
    def ok(self) -> bool:
        return self.kind is ErrorKind.NONE

    def value(self, prefix: str) -> str | None:
        """The text after ``prefix:`` in the first answer line that has it (``+CSQ`` →
        ``"20,99"``)."""
        for line in self.lines:
            if line.startswith(prefix + ":"):
                return line[len(prefix) + 1 :].strip()
        return None


@dataclass(frozen=True, slots=True)
class Timeout:
    """The command got no final result in time; the engine takes the next command."""

    command: str
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Urc:
    """An unsolicited result code: ``name`` (``+CMTI``), the text after the colon, and for
    two-line URCs (``+CMT``, ``+CDS``) the PDU line."""

    name: str
    args: str
    pdu: str | None = None


@dataclass(frozen=True, slots=True)
class Noise:
    """A line nobody asked for that is no known URC (vendor chatter, a late answer)."""

    line: str


Event = Response | Timeout | Urc | Noise


@dataclass(slots=True)
class _Pending:
    command: str
    expects: str  # the answer prefix this command asks for ("+CREG"), "" for none
    deadline_ms: int
    payload: bytes | None  # written after the "> " prompt
    lines: list[str]


def _prefix(line: str) -> str:
    head = line.split(":", 1)[0] if ":" in line else line
    return head.strip()


def _expected_prefix(command: str) -> str:
    """``AT+CREG?`` → ``+CREG``; ``AT^SYSINFO`` → ``^SYSINFO``; ``ATE0`` → ``""``."""
    body = command[2:] if command[:2].upper() == "AT" else command
    if not body or body[0] not in "+^$%":
        return ""
    end = 1
    while end < len(body) and (body[end].isalnum() or body[end] == "_"):
        end += 1
    return body[:end].upper()


class AtEngine:
    def __init__(self) -> None:
        self._buf = bytearray()
        self._out = bytearray()
        self._pending: _Pending | None = None
        self._urc_head: tuple[str, str] | None = None  # a two-line URC waiting for its PDU

    @property
    def busy(self) -> bool:
        return self._pending is not None

    @property
    def payload_pending(self) -> bool:
        """A command's payload still waits for its ``> `` prompt (nothing of it written)."""
        return self._pending is not None and self._pending.payload is not None

    @property
    def deadline_ms(self) -> int | None:
        return None if self._pending is None else self._pending.deadline_ms

    def send(
        self, command: str, *, now_ms: int, timeout_ms: int, payload: bytes | None = None
    ) -> None:
        """Queue ``command`` (without CR); ``payload`` is written after the ``> `` prompt,
        followed by Ctrl-Z (PDU mode, TS 27.005 §3.5.1)."""
        if self._pending is not None:
            raise AtBusy(f"{command!r} sent while {self._pending.command!r} is pending")
        if "\r" in command or "\n" in command:
            raise ValueError("an AT command is one line")
        self._pending = _Pending(
            command, _expected_prefix(command), now_ms + timeout_ms, payload, []
        )
        self._out += command.encode("ascii") + b"\r"

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def tick(self, now_ms: int) -> list[Event]:
        """A Timeout when the pending command's deadline has passed."""
        p = self._pending
        if p is None or now_ms < p.deadline_ms:
            return []
        self._pending = None
        return [Timeout(p.command, tuple(p.lines))]

    def reset(self) -> None:
        """Forget everything (the line was reopened)."""
        self._buf.clear()
        self._out.clear()
        self._pending = None
        self._urc_head = None

    def receive_data(self, data: bytes) -> list[Event]:
        self._buf += data
        events: list[Event] = []
        while True:
            if self._prompt_ready():
                continue
            cut = _line_end(self._buf)
            if cut < 0:
                if len(self._buf) > MAX_LINE:
                    events.append(Noise(self._buf[:MAX_LINE].decode("latin-1")))
                    del self._buf[:MAX_LINE]
                break
            raw = bytes(self._buf[:cut])
            del self._buf[: cut + 1]
            line = raw.decode("latin-1").strip()
            if line:
                events.extend(self._line(line))
        return events

    def _prompt_ready(self) -> bool:
        """The ``> `` prompt (no line end after it): write the payload and Ctrl-Z."""
        p = self._pending
        if p is None or p.payload is None:
            return False
        start = 0
        while start < len(self._buf) and self._buf[start] in b"\r\n":
            start += 1
        if self._buf[start : start + 1] != b">":
            return False
        del self._buf[: start + 1]
        if self._buf[:1] == b" ":
            del self._buf[:1]
        self._out += p.payload + CTRL_Z
        p.payload = None
        return True

    def _line(self, line: str) -> list[Event]:
        if self._urc_head is not None:
            name, args = self._urc_head
            self._urc_head = None
            return [Urc(name, args, line)]
        p = self._pending
        if p is not None and line == p.command:
            return []  # echo
        final = self._final(line)
        if final is not None and p is not None:
            self._pending = None
            return [final]
        prefix = _prefix(line).upper()
        if p is not None and p.expects and prefix == p.expects:
            p.lines.append(line)
            return []
        if prefix in _URC_PREFIXES or line.startswith("^"):
            args = line.split(":", 1)[1].strip() if ":" in line else ""
            if prefix in _TWO_LINE:
                self._urc_head = (prefix, args)
                return []
            return [Urc(prefix, args)]
        if p is not None:
            p.lines.append(line)
            return []
        return [Noise(line)]

    def _final(self, line: str) -> Response | None:
        p = self._pending
        command = p.command if p else ""
        lines = tuple(p.lines) if p else ()
        upper = line.upper()
        if upper in _FINAL_OK:
            return Response(command, lines, line)
        if upper in _FINAL_FAIL:
            return Response(command, lines, line, ErrorKind.ERROR)
        for tag, kind in (("+CME ERROR:", ErrorKind.CME), ("+CMS ERROR:", ErrorKind.CMS)):
            if upper.startswith(tag):
                text = line[len(tag) :].strip()
                code = int(text) if text.isdigit() else None
                return Response(command, lines, line, kind, code)
        return None


def _line_end(buf: bytearray) -> int:
    r, n = buf.find(b"\r"), buf.find(b"\n")
    if r < 0:
        return n
    if n < 0:
        return r
    return min(r, n)
