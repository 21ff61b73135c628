"""Holding the parts of a long message until the last one, and expiring stragglers."""

from __future__ import annotations

from simgate.api.smpp.concat import Reassembly
from simgate.api.smpp.submit import Concat, Piece


def _part(seq: int, total: int = 3, ref: int = 1) -> Piece:
    return Piece("s", "447700900123", 0, f"p{seq}".encode(), Concat(ref, total, seq), False, None)


def test_the_last_part_completes_the_message_in_any_order() -> None:
    parts = Reassembly(timeout=60)
    answers: list[tuple[int, str]] = []
    assert parts.add(1, _part(3), lambda s, i: answers.append((s, i)), 0.0) is None
    assert parts.add(1, _part(1), lambda s, i: answers.append((s, i)), 0.0) is None
    whole = parts.add(1, _part(2), lambda s, i: answers.append((s, i)), 0.0)
    assert whole is not None
    assert sorted(whole.pieces) == [1, 2, 3]
    assert len(whole.answers) == 3
    assert len(parts) == 0


def test_parts_of_other_accounts_or_refs_do_not_mix() -> None:
    parts = Reassembly(timeout=60)
    assert parts.add(1, _part(1, total=2), lambda s, i: None, 0.0) is None
    assert parts.add(2, _part(2, total=2), lambda s, i: None, 0.0) is None
    assert parts.add(1, _part(2, total=2, ref=9), lambda s, i: None, 0.0) is None
    assert len(parts) == 3


def test_incomplete_messages_expire() -> None:
    parts = Reassembly(timeout=10)
    parts.add(1, _part(1), lambda s, i: None, 0.0)
    assert parts.expire(5.0) == []
    expired = parts.expire(10.0)
    assert len(expired) == 1
    assert len(parts) == 0
