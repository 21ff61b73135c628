"""Each part's TP-MR, written down before the next part goes out (as lines/smpp/refs.py).

A status report quotes only the TP-MR the modem gave the part (``+CMGS: <mr>``, TS 27.005
§3.5.1) and the recipient (TS 23.040 §9.2.2.3). This memory links them to the message, its
lease and its part, so a report that comes after a restart (or after simgate died between
the +CMGS answer and recording the submit) still finds its message. TP-MR wraps at 256 per
port, so a report matches the newest part on its port with that TP-MR, for that recipient,
sent within the report window.

An append-only file, one line per part and one per settled report, ``os.write`` the moment
the answer came (a kill -9 cannot lose it)::

    S <port> <mr> <sent_ms> <message_id> <lease_seq> <part> <parts> <recipient>
    D <ref>

``ref`` (``<port>.<mr>.<sent_ms>``) is the part's line reference. Rewritten with the live
entries when it holds more than twice them (a new file moved over the old).
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

from simgate.domain.queue import ReportHint

log = logging.getLogger(__name__)

__all__ = ["MrJournal", "SentPart"]

MATCH_DIGITS = 8  # a report may give the number in another form (+49 170 vs 0170)


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

    def __len__(self) -> int:
        return len(self._live)

    def open(self) -> None:
        if self.path is None or self._fd is not None:
            return
        with contextlib.suppress(FileNotFoundError), open(self.path, encoding="utf-8") as fh:
            for text in fh:
                self._lines += 1
                if not text.endswith("\n"):
                    continue  # cut short by a crash mid-write
                self._replay(text.split())
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if self._lines > 2 * len(self._live) + 1000:
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
        if self._lines > 2 * len(self._live) + 1000:
            self._rewrite()

    def _rewrite(self) -> None:
        assert self.path is not None
        tmp = f"{self.path}.new"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, "".join(p.line() for p in self._live.values()).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError as exc:  # keep appending to the old file: bigger, nothing lost
            log.warning("modem journal %s not compacted: %s", self.path, exc)
            return
        self.close()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lines = len(self._live)
