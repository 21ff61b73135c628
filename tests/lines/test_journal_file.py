"""The simulated lines' journal files: cut entries ended on open, writes under a shared lock."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from simgate.lines import journal_file


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("", ""),
        ("S 7 1 0 7 12\n", "S 7 1 0 7 12\n"),
        ("S 7 1 0 7 12\nS 8 1 0 7 1", "S 7 1 0 7 12\nS 8 1 0 7 1~\n"),
        ("A 7.", "A 7.~\n"),
    ],
)
def test_opening_ends_an_entry_a_kill_cut_with_the_mark(
    tmp_path: Path, before: str, after: str
) -> None:
    journal = tmp_path / "sim.journal"
    journal.write_text(before, encoding="ascii")
    fd = journal_file.open_journal(str(journal))
    try:
        journal_file.append(fd, "A 7.0\n")
    finally:
        os.close(fd)
    assert journal.read_text(encoding="ascii") == after + "A 7.0\n"


def test_a_missing_journal_is_created(tmp_path: Path) -> None:
    os.close(journal_file.open_journal(str(tmp_path / "new.journal")))
    assert (tmp_path / "new.journal").read_bytes() == b""


def test_whole_entries_are_those_ended_by_a_newline_alone() -> None:
    assert journal_file.is_whole("S 7 1 0 7 12\n")
    assert not journal_file.is_whole("S 7 1 0 7 1~\n")  # cut by a kill
    assert not journal_file.is_whole("S 7 1 0")  # still being written


def test_opening_a_journal_waits_for_a_peers_write(tmp_path: Path) -> None:
    """Two workers share a non-exclusive sim line's journal: one starting while the other is
    in the middle of a write must not take that entry for one a kill cut."""
    journal = tmp_path / "sim.journal"
    peer = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    opened: list[int] = []
    try:
        fcntl.flock(peer, fcntl.LOCK_EX)  # what journal_file.append holds while it writes
        os.write(peer, b"S 7 1 0 7 1")
        opener = threading.Thread(
            target=lambda: opened.append(journal_file.open_journal(str(journal)))
        )
        opener.start()
        # Until the opener waits for the lock (the kernel lists it as blocked), or is done.
        inode = f":{os.fstat(peer).st_ino} "
        while opener.is_alive() and not any(
            "->" in lock and inode in lock for lock in Path("/proc/locks").read_text().split("\n")
        ):
            time.sleep(0.001)
        os.write(peer, b"2\n")
        fcntl.flock(peer, fcntl.LOCK_UN)
        opener.join()
    finally:
        os.close(peer)
        for fd in opened:
            os.close(fd)
    assert journal.read_text(encoding="ascii") == "S 7 1 0 7 12\n"
