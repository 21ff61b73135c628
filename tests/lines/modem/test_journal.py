"""The TP-MR journal: matching per port on TP-MR + recipient + window, newest first, and
what a restart reads back (lines/modem/journal.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from simgate.domain.queue import ReportHint
from simgate.lines.modem.journal import MrJournal, SentPart, same_number

DAY = 86_400_000


def part(
    mid: int, *, port: int = 0, mr: int = 5, at: int = 1000, to: str = "+4917012345678"
) -> SentPart:
    return SentPart(port, mr, at, ReportHint(mid, 1, 1, 1, port), to)


@contextmanager
def reopened(path: str) -> Iterator[MrJournal]:
    """The journal at ``path`` as a restart opens it (closed after)."""
    k = MrJournal(path)
    k.open()
    try:
        yield k
    finally:
        k.close()


def read_back(path: str, *, mr: int) -> tuple[int, ReportHint | None]:
    """What a restart reads back: how many parts the journal holds, and the hint a report
    with TP-MR ``mr`` on port 0 for the usual recipient matches (None: no match)."""
    with reopened(path) as k:
        got = k.match(port=0, mr=mr, recipient="+4917012345678", now_ms=2000, window_ms=DAY)
        return len(k), None if got is None else got.hint


def test_match_on_port_mr_recipient_and_window() -> None:
    j = MrJournal(None)
    j.note(part(1, at=1000))
    j.note(part(2, port=1, at=1000))
    j.note(part(3, at=2000, to="+4917099999999"))
    found = j.match(port=0, mr=5, recipient="017012345678", now_ms=5000, window_ms=DAY)
    assert found is not None
    assert found.hint.message_id == 1  # national form of the same number
    assert j.match(port=0, mr=6, recipient="+4917012345678", now_ms=5000, window_ms=DAY) is None
    assert (
        j.match(port=0, mr=5, recipient="+4917012345678", now_ms=DAY + 1001, window_ms=DAY) is None
    )


def test_a_wrapped_mr_matches_the_newest() -> None:
    j = MrJournal(None)
    j.note(part(1, at=1000))
    j.note(part(2, at=9000))
    found = j.match(port=0, mr=5, recipient="+4917012345678", now_ms=9500, window_ms=DAY)
    assert found is not None
    assert found.hint.message_id == 2
    j.settled([found.ref])
    again = j.match(port=0, mr=5, recipient="+4917012345678", now_ms=9500, window_ms=DAY)
    assert again is not None
    assert again.hint.message_id == 1


def test_restart_reads_back_unsettled_parts(tmp_path: Path) -> None:
    path = str(tmp_path / "j")
    j = MrJournal(path)
    j.open()
    j.note(part(1))
    j.note(part(2, mr=6))
    j.settled([part(1).ref])
    j.close()
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("S 0 7 1000 3 1 1 1 +49")  # cut short by a crash: ignored
    assert read_back(path, mr=6) == (1, ReportHint(2, 1, 1, 1, 0))


def test_an_entry_after_a_cut_one_is_read_back(tmp_path: Path) -> None:
    """A kill cut the last entry short; the restarted journal's next entry is not glued to
    it (appended as it was, the two made one unreadable line: part 2's report was lost)."""
    path = str(tmp_path / "j")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("S 0 7 1000 3 1 1 1 +49")  # cut short by a crash
    j = MrJournal(path)
    j.open()
    j.note(part(2, mr=6))
    j.close()
    assert read_back(path, mr=6) == (1, ReportHint(2, 1, 1, 1, 0))


def test_compaction_keeps_the_live_parts(tmp_path: Path) -> None:
    path = str(tmp_path / "j")
    j = MrJournal(path)
    j.open()
    for i in range(3000):
        p = part(i, mr=i % 256, at=i)
        j.note(p)
        if i < 2990:
            j.settled([p.ref])
    j.close()
    assert len(Path(path).read_text(encoding="utf-8").splitlines()) < 2000
    with reopened(path) as k:
        assert len(k) == 10


def test_same_number() -> None:
    assert same_number("+8613800138000", "13800138000")
    assert not same_number("+8613800138000", "13800138001")
    assert same_number("Alpha", "Alpha")


# ---- intents: parts whose +CMGS answer was lost (issue 16 gap 2) -------------------------

TO = "+4917012345678"


def lost_part(j: MrJournal, mid: int, *, at: int = 1000, to: str = "+4917012345678") -> None:
    hint = ReportHint(mid, 1, 1, 1, 0)
    j.lost(j.intend(port=0, sent_ms=at, hint=hint, recipient=to))


def test_a_report_settles_a_part_whose_answer_was_lost() -> None:
    j = MrJournal(None)
    j.note(part(1, mr=5))
    lost_part(j, 2, at=2000)
    assert (
        j.match_lost(mr=5, scts_ms=2000, port=0, recipient=TO, now_ms=3000, window_ms=DAY) is None
    )  # TP-MR 5 is message 1's
    assert (
        j.match_lost(mr=20, scts_ms=2000, port=0, recipient=TO, now_ms=3000, window_ms=DAY) is None
    )  # not right after 5
    assert (
        j.match_lost(
            mr=6, scts_ms=2000, port=0, recipient="+4917099999999", now_ms=3000, window_ms=DAY
        )
        is None
    )  # another recipient
    assert (
        j.match_lost(
            mr=6, scts_ms=2000 - 3_600_000, port=0, recipient=TO, now_ms=3000, window_ms=DAY
        )
        is None
    )  # submitted before
    found = j.match_lost(mr=6, scts_ms=2000, port=0, recipient=TO, now_ms=3000, window_ms=DAY)
    assert found is not None
    assert (found.hint.message_id, found.mr, found.sent_ms) == (2, 6, 2000)
    assert j.intents == 0
    assert j.match(port=0, mr=6, recipient="+4917012345678", now_ms=3000, window_ms=DAY) == found


def test_an_intent_still_awaiting_its_answer_or_not_sent_settles_nothing() -> None:
    j = MrJournal(None)
    hint = ReportHint(3, 1, 1, 1, 0)
    intent = j.intend(port=0, sent_ms=1000, hint=hint, recipient="+4917012345678")
    assert j.awaiting(port=0, recipient="017012345678")
    assert (
        j.match_lost(mr=0, scts_ms=1000, port=0, recipient=TO, now_ms=3000, window_ms=DAY) is None
    )  # its answer may still come
    j.not_sent(intent)
    assert not j.awaiting(port=0, recipient="+4917012345678")
    assert (
        j.match_lost(mr=0, scts_ms=1000, port=0, recipient=TO, now_ms=3000, window_ms=DAY) is None
    )
    j.note(part(4, mr=9))  # an intent that got its answer becomes the part
    assert j.intents == 0


def test_lost_parts_survive_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "j")
    j = MrJournal(path)
    j.open()
    j.note(part(1, mr=5))
    lost_part(j, 2, at=2000)
    hint = ReportHint(3, 1, 1, 1, 0)
    j.not_sent(j.intend(port=0, sent_ms=2500, hint=hint, recipient="+4917012345678"))
    j.close()
    with reopened(path) as k:
        assert k.intents == 1
        found = k.match_lost(
            port=0, mr=6, recipient="+4917012345678", scts_ms=2000, now_ms=3000, window_ms=DAY
        )
        assert found is not None
        assert found.hint.message_id == 2
