"""The lines' journals (lines/sim.py, lines/sim_voice.py; lines/modem/journal.py opens and
reads its file through here too): append-only text files, one entry per line, that several
processes may share (a non-exclusive sim line run by two ``simgate worker`` processes appends
to one file).

A line's entries of one batch go out in one ``write``. A SIGKILL can stop that write part-way:
the kernel checks for a fatal signal between the pages of a write, so the file may end in the
first part of an entry. Appended to as it was, the restarted line glued its next entry to
that part: one unreadable line, and the sim SMSC forgot that submit's report (issue 15 debts).
:func:`open_journal` ends a cut entry with :data:`CUT` first.

Writers hold the file's ``flock`` for each write, and :func:`open_journal` takes it before it
looks at the end of the file: otherwise a process starting while a peer is in the middle of
a write (readers see writes page by page) would take that entry for a cut one.
"""

from __future__ import annotations

import fcntl
import os

__all__ = ["CUT", "append", "is_whole", "open_journal"]

# What ends an entry a kill cut short. Not a bare newline: the entry's last field may be cut
# itself (port "12" written as "1"), and with a newline alone the next start would read it as
# a whole entry. The "~" joins that field, so no reader takes it for a number or a ref, after
# any number of restarts.
CUT = b"~\n"


def open_journal(path: str) -> int:
    """``path`` opened for :func:`append` (created if missing), a cut last entry ended with
    :data:`CUT`."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a peer's write in progress ends first
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                os.write(fd, CUT)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    except BaseException:
        os.close(fd)
        raise
    return fd


def append(fd: int, text: str) -> None:
    """``text`` (whole entries) at the end of the journal, in one write under the lock."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        os.write(fd, text.encode())
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def is_whole(line: str) -> bool:
    """Whether ``line`` (as read, with its newline) is a whole entry: not one a kill cut
    (ended with :data:`CUT`), nor the last one while a peer is still writing it."""
    return line.endswith("\n") and not line.endswith(CUT.decode())
