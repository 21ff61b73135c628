"""The dispatcher's write journal: which leased messages may have reached the line.

A lease covers a whole batch, but a crash mid-batch leaves part of it never written to the
line (issue 14 item 3). Only what may have left may become UNKNOWN (spec §7), so the worker
notes each message id here the moment before the line writes it (``SubmitRequest.on_write``,
lines with ``Capability.WRITE_MARKS``; other lines are marked before their submit is called):
one ``os.write`` of a few bytes to an append-only file, no database write on the hot path; a
line that takes a whole batch in one call (``lines.base.BatchLine``) has it marked in one
write before any of it leaves.
``os.write`` puts the bytes in the kernel's page cache before it returns, so a kill -9 of the
process right after cannot lose them (as the SMPP refs journal and the sim line journal).

The file starts with ``O <owner> <boot id>``; each lease adds ``L <id> <id> ...`` (the batch,
one write), then one id per line as each is about to be written. More than one lease may be
open at once (the dispatcher leases the next batch and records the previous one while the
current one is being submitted, issue 15): once a batch's answers are committed the file is
rewritten with what is still open, and emptied when nothing is.

A worker takes the first free slot ``dispatch-<n>.journal`` in the data directory by an
exclusive ``flock`` (released by the kernel when the process dies, so holding it proves the
slot's previous worker is gone) and reads what that worker left: its owner name and the ids
it marked. The messages of that owner's lease that are not in the journal never left and go
back to the queue; the marked ones become UNKNOWN.

The journal is trusted only from the same boot of the host: page-cache bytes survive a
killed process, not a power cut. After a reboot (or where the boot id cannot be read) the
previous lease is left to the reaper, which stays conservative (everything UNKNOWN).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
MAX_SLOTS = 64  # workers sharing one data directory


def boot_id() -> str:
    """This boot of the host ("" where the system does not say)."""
    try:
        return _BOOT_ID.read_text(encoding="ascii").strip()
    except OSError:
        return ""


@dataclass(frozen=True, slots=True)
class Leftover:
    """What the slot's previous worker left: its owner name and the ids it marked."""

    owner: str
    leased: frozenset[int]
    written: frozenset[int]


class WriteJournal:
    """One worker's journal slot, held (locked) from :meth:`open` until :meth:`close`."""

    def __init__(self, path: Path, fd: int, leftover: Leftover | None) -> None:
        self.path = path
        self._fd = fd
        self.leftover = leftover
        self._header = 0
        # The leases still open, each with its ``L`` line, and every id marked since the
        # file was last emptied: what a rewrite keeps when one of them is done.
        self._open: list[tuple[frozenset[int], bytes]] = []
        self._marks: list[int] = []

    @classmethod
    def open(cls, directory: Path, *, slots: int = MAX_SLOTS) -> WriteJournal:
        """Lock the first free slot in ``directory`` and read what its last worker left."""
        directory.mkdir(parents=True, exist_ok=True)
        for n in range(slots):
            path = directory / f"dispatch-{n}.journal"
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return cls(path, fd, _leftover(path))
        raise RuntimeError(f"all {slots} dispatch journal slots in {directory} are in use")

    def begin(self, owner: str) -> None:
        """Start this worker's journal (after the leftover is dealt with)."""
        header = f"O {owner} {boot_id() or '-'}\n".encode()
        os.ftruncate(self._fd, 0)
        os.write(self._fd, header)
        self._header = len(header)
        self._open, self._marks = [], []
        self.leftover = None

    def leased(self, ids: Sequence[int]) -> None:
        """A new batch is leased (batches leased before it may still be open)."""
        line = ("L " + " ".join(map(str, ids)) + "\n").encode()
        self._open.append((frozenset(ids), line))
        os.write(self._fd, line)

    def mark(self, message_id: int) -> None:
        """``message_id`` is about to be written to the line."""
        self._marks.append(message_id)
        os.write(self._fd, b"%d\n" % message_id)

    def mark_many(self, message_ids: Sequence[int]) -> None:
        """``message_ids`` are about to be written to the line, all at once (a line that
        takes a batch in one call, lines.base.BatchLine): one write for all of them."""
        if not message_ids:
            return
        self._marks.extend(message_ids)
        os.write(self._fd, b"".join(b"%d\n" % m for m in message_ids))

    def done(self, ids: Sequence[int]) -> None:
        """The answers of the batch leased as ``ids`` are committed: its lease and marks no
        longer matter. The batches still open are rewritten in one write after the cut; a
        kill between the two leaves them to the reaper (UNKNOWN, never sent twice), as a kill
        between a lease's commit and its ``L`` line always did."""
        batch = frozenset(ids)
        self._open = [(b, line) for b, line in self._open if b != batch]
        os.ftruncate(self._fd, self._header)
        if not self._open:
            self._marks = []
            return
        still = frozenset().union(*(b for b, _ in self._open))
        self._marks = [m for m in self._marks if m in still]
        body = b"".join(line for _, line in self._open)
        body += b"".join(b"%d\n" % m for m in self._marks)
        os.write(self._fd, body)

    def clear(self) -> None:
        """Every open batch's answers are committed: nothing marked matters any more."""
        self._open, self._marks = [], []
        os.ftruncate(self._fd, self._header)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)  # releases the lock


def _leftover(path: Path) -> Leftover | None:
    """The previous worker's owner and marks, if they can be trusted (same boot)."""
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError:
        return None
    header = lines[0].split()
    if len(header) != 3 or header[0] != b"O":
        return None
    owner, boot = header[1].decode("ascii", "replace"), header[2].decode("ascii", "replace")
    if boot != boot_id() or boot in ("", "-"):
        log.warning("dispatch journal %s is from another boot: its lease is the reaper's", path)
        return None
    # A line cut short by the kill was never followed by its write (the mark comes first);
    # a cut id that happens to name another message only makes that one UNKNOWN.
    written = frozenset(int(x) for x in lines[1:] if x.isdigit())
    leased = frozenset(
        int(x) for line in lines[1:] if line.startswith(b"L ") for x in line.split()[1:]
    )
    return Leftover(owner=owner, leased=leased, written=written)
