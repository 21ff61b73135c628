"""What each submit_sm_resp id stands for: the message, lease and part it was submitted for.

A receipt quotes only the SMSC's id. If simgate dies between a submit_sm_resp and recording
the submit, no part row links that id to its message, and the message is left UNKNOWN; this
memory does link them, so the receipt, when it comes (after the restart, on any bind), carries
the hint that settles the message (README "Crash safety"). A sequence number stored with the
SUBMITTING state could not do it: the receipt does not quote ours, only the SMSC's id.

The memory is a journal file per line, written with ``os.write`` the moment the answers of a
submit arrive, before the worker is told: a kill -9 cannot lose what was written (a power
loss can lose the page cache's last lines; then those receipts stay orphans as before). It is
read back on start. One line per id, the SMSC's text last (it is not ours to parse)::

    <message_id> <lease_seq> <part> <parts> <covers> <port> <smsc id>

``covers`` is how many parts the one id stands for (SMPP message_payload: the SMSC splits the
text itself). Bounded: the newest ``capacity`` ids are kept; when the file holds twice that,
it is rewritten with those (a new file moved over the old, so a crash keeps one or the other).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from simgate.domain.queue import ReportHint

log = logging.getLogger(__name__)

__all__ = ["SubmitRefs", "Submitted"]


class Submitted(NamedTuple):
    """One submit_sm_resp id and what it stands for."""

    smsc_id: str
    hint: ReportHint  # the first part the id stands for
    covers: int = 1


class SubmitRefs:
    def __init__(self, path: str | None, capacity: int = 100_000) -> None:
        self.path = path
        self.capacity = capacity
        self._ids: dict[str, str] = {}  # smsc id → the rest of its journal line, oldest first
        self._fd: int | None = None
        self._lines = 0  # lines in the file, to know when to rewrite it

    def __len__(self) -> int:
        return len(self._ids)

    def open(self) -> None:
        """Read what the file remembers and keep it open for appending."""
        if self.path is None or self._fd is not None:
            return
        cut = False
        ids = self._ids
        with contextlib.suppress(FileNotFoundError), open(self.path, encoding="utf-8") as fh:
            # Split only (a lookup parses its line): start-up reads 100,000 lines in ~0.1 s.
            for line in fh:
                self._lines += 1
                cut = not line.endswith("\n")
                fields = line[:-1].split(" ", 6)
                if cut or len(fields) != 7 or not fields[6]:
                    continue
                ids.pop(fields[6], None)
                ids[fields[6]] = " ".join(fields[:6])
        if len(ids) > self.capacity:
            self._ids = dict(list(ids.items())[-self.capacity :])
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        # Rewritten without the line a crash cut short (the next one must not be glued to it).
        if cut or self._lines > 2 * self.capacity:
            self._rewrite()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def note(self, entries: Sequence[Submitted]) -> None:
        """Remember the ids of one submit (one write, before the worker hears of them)."""
        lines = [_line(e) for e in entries if "\n" not in e.smsc_id]
        for e in entries:
            self._keep(e)
        if self._fd is None or not lines:
            return
        os.write(self._fd, "".join(lines).encode())
        self._lines += len(lines)
        if self._lines > 2 * self.capacity:
            self._rewrite()

    def hint(self, smsc_id: str) -> ReportHint | None:
        """The hint for a receipt quoting ``smsc_id``: its first part, and how many parts it
        stands for (a payload id: all of them, under the one receipt)."""
        fields = self._ids.get(smsc_id)
        entry = None if fields is None else _parse(f"{fields} {smsc_id}\n")
        if entry is None:
            return None
        return entry.hint._replace(covers=entry.covers)

    def covers(self) -> Iterator[tuple[str, int]]:
        """Each id with how many parts it stands for, oldest first."""
        for smsc_id, fields in list(self._ids.items()):
            with contextlib.suppress(ValueError, IndexError):
                yield smsc_id, int(fields.split(" ", 5)[4])

    def _keep(self, entry: Submitted) -> None:
        # Kept as the journal's text (parsed again on the rare lookup): a quarter of the
        # memory of the tuples, which mattered at ``capacity`` ids.
        self._ids.pop(entry.smsc_id, None)  # a re-noted id moves to the newest end
        self._ids[entry.smsc_id] = _fields(entry)
        if len(self._ids) > self.capacity:
            del self._ids[next(iter(self._ids))]

    def _rewrite(self) -> None:
        assert self.path is not None
        tmp = f"{self.path}.new"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                text = "".join(f"{fields} {smsc_id}\n" for smsc_id, fields in self._ids.items())
                os.write(fd, text.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError as exc:  # keep appending to the old file: bigger, but nothing lost
            log.warning("smpp refs journal %s not compacted: %s", self.path, exc)
            return
        self.close()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lines = len(self._ids)


def _fields(e: Submitted) -> str:
    h = e.hint
    port = "-" if h.port is None else h.port
    return f"{h.message_id} {h.lease_seq} {h.part} {h.parts} {e.covers} {port}"


def _line(e: Submitted) -> str:
    return f"{_fields(e)} {e.smsc_id}\n"


def _parse(line: str) -> Submitted | None:
    """One journal line; None for a line cut short or not ours."""
    if not line.endswith("\n"):
        return None  # the last line, cut by a crash mid-write
    fields = line[:-1].split(" ", 6)
    if len(fields) != 7 or not fields[6]:
        return None
    try:
        mid, seq, part, parts, covers = (int(f) for f in fields[:5])
        port = None if fields[5] == "-" else int(fields[5])
    except ValueError:
        return None
    return Submitted(fields[6], ReportHint(mid, seq, part, parts, port), covers)
