"""The SMPP line's memory of submit ids (lines/smpp/refs.py): what a receipt after a restart
needs to find its message, kept across processes, bounded, and tolerant of a cut last line."""

from __future__ import annotations

from pathlib import Path

from simgate.domain.queue import ReportHint
from simgate.lines.smpp.refs import SubmitRefs, Submitted


def _hint(mid: int, part: int = 1, parts: int = 1) -> ReportHint:
    return ReportHint(message_id=mid, lease_seq=3, part=part, parts=parts, port=0)


def test_a_new_process_reads_what_the_last_one_noted(tmp_path: Path) -> None:
    path = str(tmp_path / "smsc.refs")
    first = SubmitRefs(path)
    first.open()
    first.note([Submitted("5b000001", _hint(7, 1, 2)), Submitted("5b000002", _hint(7, 2, 2))])
    first.note([Submitted("odd id with spaces", _hint(8))])
    first.note([Submitted("5b000003", _hint(9, 1, 3), covers=3)])  # message_payload
    # No close(): a kill -9 leaves the file as os.write left it.
    second = SubmitRefs(path)
    second.open()
    assert second.hint("5b000002") == _hint(7, 2, 2)
    assert second.hint("odd id with spaces") == _hint(8)
    # One payload id stands for all three parts: its one receipt reports them all.
    assert second.hint("5b000003") == _hint(9, 1, 3)._replace(covers=3)
    assert second.hint("5b000009") is None
    assert [c for _, c in second.covers()] == [1, 1, 1, 3]
    second.close()


def test_a_line_cut_by_a_crash_and_foreign_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "smsc.refs"
    path.write_text("7 1 1 1 1 0 aa\nnot a line\n8 1 1 1 1 - bb\n9 1 1 1 1 0 c")
    refs = SubmitRefs(str(path))
    refs.open()
    assert refs.hint("aa") == ReportHint(7, 1, 1, 1, 0)
    assert refs.hint("bb") == ReportHint(8, 1, 1, 1, None)
    assert refs.hint("c") is None
    refs.note([Submitted("dd", _hint(10))])  # appends after the cut line, on a line of its own
    refs.close()
    again = SubmitRefs(str(path))
    again.open()
    assert again.hint("dd") == _hint(10)
    assert again.hint("c") is None
    assert again.hint("aa") is not None
    again.close()


def test_the_file_is_compacted_to_the_newest_ids(tmp_path: Path) -> None:
    path = tmp_path / "smsc.refs"
    refs = SubmitRefs(str(path), capacity=10)
    refs.open()
    for mid in range(1, 26):
        refs.note([Submitted(f"id{mid}", _hint(mid))])
    assert len(refs) == 10
    # Rewritten when it held more than 20 lines: the 10 newest then, plus those since.
    assert len(path.read_text().splitlines()) <= 20
    refs.close()
    reopened = SubmitRefs(str(path), capacity=10)
    reopened.open()
    assert reopened.hint("id25") == _hint(25)
    assert reopened.hint("id15") is None  # the oldest are forgotten
    assert [i for i, _ in reopened.covers()] == [f"id{m}" for m in range(16, 26)]
    reopened.close()


def test_without_a_path_it_remembers_in_memory_only(tmp_path: Path) -> None:
    refs = SubmitRefs(None)
    refs.open()
    refs.note([Submitted("x", _hint(1))])
    assert refs.hint("x") == _hint(1)
    refs.close()
    assert list(tmp_path.iterdir()) == []
