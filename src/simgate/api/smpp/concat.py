"""Parts of a long message, held until the last one comes (issue 18: "one message, several
parts, like the HTTP dialects").

An ESME sends a long message as several submit_sm (UDH or SAR, §5.3.2.22-24). simgate stores
it as one message: each part's submit_sm_resp waits until every part is here and the message
is committed, and all parts are answered with the message's id. Parts are keyed by account,
addresses and reference (they may come on different binds of the account); a message whose
parts do not all arrive within the timeout is refused (ESME_RSUBMITFAIL for each part held).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from simgate.api.smpp.submit import Piece

Key = tuple[int, str, str, int, int]  # account, sender, destination, ref, total


@dataclass
class Pending:
    started: float
    pieces: dict[int, Piece] = field(default_factory=dict)
    answers: list[Callable[[int, str], None]] = field(default_factory=list)  # (status, id)


class Reassembly:
    def __init__(self, *, timeout: float, max_pending: int = 10_000) -> None:
        self.timeout = timeout
        self.max_pending = max_pending
        self._pending: dict[Key, Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self, account_id: int, piece: Piece, answer: Callable[[int, str], None], now: float
    ) -> Pending | None:
        """Hold ``piece``; returns the whole message (its parts and their answers) when this
        was the last part, else None. False when too many messages are open: the caller
        refuses the part."""
        assert piece.concat is not None
        c = piece.concat
        key = (account_id, piece.sender, piece.to, c.ref, c.total)
        entry = self._pending.get(key)
        if entry is None:
            entry = self._pending[key] = Pending(now)
        entry.pieces[c.seq] = piece  # a repeated part replaces the earlier one
        entry.answers.append(answer)
        if len(entry.pieces) < c.total:
            return None
        del self._pending[key]
        return entry

    def full(self) -> bool:
        return len(self._pending) >= self.max_pending

    def expire(self, now: float) -> list[Pending]:
        """Messages whose parts stopped coming: removed, for the caller to refuse."""
        old = [k for k, p in self._pending.items() if now - p.started >= self.timeout]
        return [self._pending.pop(k) for k in old]
