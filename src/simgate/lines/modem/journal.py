"""Each part's TP-MR, written down before the next part goes out (as lines/smpp/refs.py).

A status report quotes only the TP-MR the modem gave the part (``+CMGS: <mr>``, TS 27.005
§3.5.1) and the recipient (TS 23.040 §9.2.2.3). This memory links them to the message, its
lease and its part, so a report that comes after a restart (or after simgate died between
the +CMGS answer and recording the submit) still finds its message. TP-MR wraps at 256 per
port, so a report matches the newest part on its port with that TP-MR, for that recipient,
sent within the report window.

Before a part's PDU is written its *intent* is noted (port, recipient, part, time, and the
TP-MR last seen on that port). When the +CMGS answer never comes (the line dropped, the
modem hung after the PDU) the part may have gone with a TP-MR nobody saw, and its message
is UNKNOWN. A later status report on that port, to that recipient, submitted (TP-SCTS)
after the intent, whose TP-MR no noted part claims and which follows the TP-MR last seen
on the port by at most ``MR_SLACK``, settles that part (issue 16 gap 2). Without such a
report the message stays UNKNOWN: never resent blindly (design: crash safety).

An append-only file, one line per part and one per settled report, ``os.write`` the moment
the answer came (a kill -9 cannot lose it)::

    I <port> <sent_ms> <message_id> <lease_seq> <part> <parts> <recipient> <prev_mr>
    X <port> <message_id> <lease_seq> <part>
    S <port> <mr> <sent_ms> <message_id> <lease_seq> <part> <parts> <recipient>
    D <ref>

``I`` is an intent (``prev_mr`` -1 when none is known), ``X`` one whose PDU surely did not
go (no prompt, or the network refused it); an ``S`` for the same part also ends it. ``ref``
(``<port>.<mr>.<sent_ms>``) is the part's line reference. Rewritten with the live entries
when it holds more than twice them (a new file moved over the old).
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

from simgate.domain.queue import ReportHint
from simgate.lines.journal_file import is_whole, open_journal

log = logging.getLogger(__name__)

__all__ = ["Intent", "MrJournal", "SentPart"]

MATCH_DIGITS = 8  # a report may give the number in another form (+49 170 vs 0170)
# A modem takes a new TP-MR for every SMS-SUBMIT it tries (TS 23.040 §9.2.3.6), also for
# ones the network refused: the lost part's TP-MR follows the last one seen by at most this.
MR_SLACK = 8
# The SC's clock (TP-SCTS) against ours: a report of a part submitted earlier than an
# intent by more than this is not that intent's.
SCTS_SKEW_MS = 15 * 60_000

MAX_INTENTS = 4096

IntentKey = tuple[int, int, int, int]  # port, message_id, lease_seq, part


@dataclass(frozen=True, slots=True)
class Intent:
    """A part about to be written (its +CMGS answer not yet seen)."""

    port: int
    sent_ms: int
    hint: ReportHint
    recipient: str
    prev_mr: int  # the TP-MR last noted on the port before it, -1 when unknown

    @property
    def key(self) -> IntentKey:
        return (self.port, self.hint.message_id, self.hint.lease_seq, self.hint.part)

    def line(self) -> str:
        h = self.hint
        return (
            f"I {self.port} {self.sent_ms} {h.message_id} {h.lease_seq} {h.part} {h.parts} "
            f"{self.recipient} {self.prev_mr}\n"
        )


@dataclass(frozen=True, slots=True)
class SentPart:
    port: int
    mr: int
    sent_ms: int
    hint: ReportHint
    recipient: str

    @property
    def ref(self) -> str:
        return f"{self.port}.{self.mr}.{self.sent_ms}"

    def line(self) -> str:
        h = self.hint
        return (
            f"S {self.port} {self.mr} {self.sent_ms} {h.message_id} {h.lease_seq} {h.part} "
            f"{h.parts} {self.recipient}\n"
        )


def same_number(a: str, b: str) -> bool:
    da, db = a.lstrip("+"), b.lstrip("+")
    if not da.isdigit() or not db.isdigit():
        return a == b
    return da[-MATCH_DIGITS:] == db[-MATCH_DIGITS:]


class MrJournal:
    def __init__(self, path: str | None) -> None:
        self.path = path
        self._live: dict[str, SentPart] = {}  # ref → part, oldest first
        self._by_mr: dict[tuple[int, int], list[str]] = {}
        self._fd: int | None = None
        self._lines = 0
        self._intents: dict[IntentKey, Intent] = {}  # oldest first
        self._in_flight: set[IntentKey] = set()  # answer still awaited in this process
        self._last_mr: dict[int, int] = {}  # port → the TP-MR last noted

    def __len__(self) -> int:
        return len(self._live)

    @property
    def intents(self) -> int:
        return len(self._intents)

    def open(self) -> None:
        if self.path is None or self._fd is not None:
            return
        with contextlib.suppress(FileNotFoundError), open(self.path, encoding="utf-8") as fh:
            for text in fh:
                self._lines += 1
                if not is_whole(text):
                    continue  # cut short by a crash mid-write
                self._replay(text.split())
        # A cut last entry is ended first (lines/journal_file.py): appended to as it was,
        # the next entry would be glued to it, one unreadable line, and its part's report lost.
        self._fd = open_journal(self.path)
        if self._lines > 2 * (len(self._live) + len(self._intents)) + 1000:
            self._rewrite()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _replay(self, f: list[str]) -> None:
        if len(f) == 9 and f[0] == "S":
            with contextlib.suppress(ValueError):
                port, mr, sent, mid, seq, part, parts = (int(x) for x in f[1:8])
                self._keep(SentPart(port, mr, sent, ReportHint(mid, seq, part, parts, port), f[8]))
        elif len(f) == 2 and f[0] == "D":
            self._forget(f[1])
        elif len(f) == 9 and f[0] == "I":
            with contextlib.suppress(ValueError):
                port, sent, mid, seq, part, parts = (int(x) for x in f[1:7])
                hint = ReportHint(mid, seq, part, parts, port)
                intent = Intent(port, sent, hint, f[7], int(f[8]))
                self._intents[intent.key] = intent
        elif len(f) == 5 and f[0] == "X":
            with contextlib.suppress(ValueError):
                port, mid, seq, part = (int(x) for x in f[1:5])
                self._intents.pop((port, mid, seq, part), None)

    def intend(self, *, port: int, sent_ms: int, hint: ReportHint, recipient: str) -> Intent:
        """Note that a part is about to be written (one write, before the PDU goes)."""
        intent = Intent(port, sent_ms, hint, recipient, self._last_mr.get(port, -1))
        self._intents[intent.key] = intent
        while len(self._intents) > MAX_INTENTS:  # lost ones no report came for
            self._intents.pop(next(iter(self._intents)))
        self._in_flight.add(intent.key)
        self._write(intent.line())
        return intent

    def not_sent(self, intent: Intent) -> None:
        """The part surely did not go (no prompt, or the network refused it)."""
        self._in_flight.discard(intent.key)
        if self._intents.pop(intent.key, None) is not None:
            self._write(f"X {intent.key[0]} {intent.key[1]} {intent.key[2]} {intent.key[3]}\n")

    def lost(self, intent: Intent) -> None:
        """The part's answer will not come: it may have gone; a report may settle it."""
        self._in_flight.discard(intent.key)

    def awaiting(self, *, port: int, recipient: str) -> bool:
        """A part to ``recipient`` on ``port`` is written and its answer not yet seen."""
        return any(
            k[0] == port and same_number(self._intents[k].recipient, recipient)
            for k in self._in_flight
            if k in self._intents
        )

    def match_lost(
        self, *, port: int, mr: int, recipient: str, scts_ms: int, now_ms: int, window_ms: int
    ) -> SentPart | None:
        """The oldest lost part (its +CMGS answer never seen) that a report with TP-MR ``mr``
        to ``recipient`` on ``port`` can be for; noted as sent with that TP-MR."""
        for key in [k for k, i in self._intents.items() if now_ms - i.sent_ms > window_ms]:
            if key not in self._in_flight:  # past any report: forgotten at the next rewrite
                del self._intents[key]
        for ref in self._by_mr.get((port, mr), ()):
            if now_ms - self._live[ref].sent_ms <= window_ms:
                return None  # the TP-MR is a noted part's
        for key, intent in self._intents.items():
            if (
                key[0] != port
                or key in self._in_flight
                or now_ms - intent.sent_ms > window_ms
                or scts_ms < intent.sent_ms - SCTS_SKEW_MS
                or not same_number(intent.recipient, recipient)
            ):
                continue
            if intent.prev_mr >= 0 and not 1 <= (mr - intent.prev_mr) % 256 <= MR_SLACK:
                continue
            part = SentPart(port, mr, intent.sent_ms, intent.hint, intent.recipient)
            self.note(part)
            return part
        return None

    def note(self, part: SentPart) -> None:
        """Remember one part (one write, before the next part is written)."""
        self._keep(part)
        self._write(part.line())

    def match(
        self, *, port: int, mr: int, recipient: str, now_ms: int, window_ms: int
    ) -> SentPart | None:
        """The newest part sent on ``port`` with TP-MR ``mr`` to ``recipient`` within the
        window; None for a report nobody here waits for."""
        for ref in reversed(self._by_mr.get((port, mr), ())):
            part = self._live[ref]
            if now_ms - part.sent_ms > window_ms:
                break
            if same_number(part.recipient, recipient):
                return part
        return None

    def settled(self, refs: list[str]) -> None:
        """Reports for these parts are committed: forget them."""
        for ref in refs:
            self._forget(ref)
        self._write("".join(f"D {ref}\n" for ref in refs))

    def _keep(self, part: SentPart) -> None:
        key = (part.port, part.hint.message_id, part.hint.lease_seq, part.hint.part)
        self._intents.pop(key, None)
        self._in_flight.discard(key)
        self._last_mr[part.port] = part.mr
        self._live[part.ref] = part
        refs = self._by_mr.setdefault((part.port, part.mr), [])
        refs.append(part.ref)
        if len(refs) > 8:  # 8 wraps of 256 back: long past any report window in practice
            self._live.pop(refs.pop(0), None)

    def _forget(self, ref: str) -> None:
        part = self._live.pop(ref, None)
        if part is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._by_mr[part.port, part.mr].remove(ref)

    def _write(self, text: str) -> None:
        if self._fd is None or not text:
            return
        os.write(self._fd, text.encode())
        self._lines += text.count("\n")
        if self._lines > 2 * (len(self._live) + len(self._intents)) + 1000:
            self._rewrite()

    def _rewrite(self) -> None:
        assert self.path is not None
        tmp = f"{self.path}.new"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                live = [*(i.line() for i in self._intents.values())]
                live += [p.line() for p in self._live.values()]
                os.write(fd, "".join(live).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError as exc:  # keep appending to the old file: bigger, nothing lost
            log.warning("modem journal %s not compacted: %s", self.path, exc)
            return
        self.close()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lines = len(self._live) + len(self._intents)
