"""Reports that overtake the record of their submit, held in memory until it commits.

A line may report a part before the dispatcher has recorded the submit that created it: the
sim line at 0 ms report delay always does, an SMSC often sends the receipt before simgate has
written its submit_sm_resp. Written on their own, such reports take the orphan path (kept as
orphans, taken back when the part appears, matched, marked, tallied, settled: two
transactions and a dozen statements per batch; issue 15 lead 1). Held here instead, they ride
the transaction that records their submit: the parts are inserted already carrying their
status and the message is settled from memory.

Only reports for a message this worker has an answer for and has not recorded yet are held
(:meth:`ReportHold.expect` after the line answered OK, :meth:`ReportHold.take` when the
record is handed to the database): so a held report never waits for something that waits
for it (a line whose reader hands in a receipt before it reads the submit's answer has not
answered yet, and its report goes the ordinary way). Durability is unchanged: the line's
call returns only once the transaction holding its reports has committed (an SMSC's
deliver_sm is acknowledged after that, as before), and fails when that record gives up, so
the line offers the report again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from simgate.domain.queue import PartReport


class _Waiter:
    """One line call's held reports: done when every one of them is committed."""

    __slots__ = ("future", "left")

    def __init__(self, count: int) -> None:
        self.left = count
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def one_done(self) -> None:
        self.left -= 1
        if self.left == 0 and not self.future.done():
            self.future.set_result(None)

    def failed(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


@dataclass(slots=True)
class Taken:
    """The held reports of the messages a record carries; :meth:`committed` or
    :meth:`failed` once the record's transaction is decided."""

    reports: list[PartReport] = field(default_factory=list)
    _waiters: list[_Waiter] = field(default_factory=list)

    def committed(self) -> None:
        for w in self._waiters:
            w.one_done()
        self._waiters = []

    def failed(self, exc: BaseException) -> None:
        for w in self._waiters:
            w.failed(exc)
        self._waiters = []


class ReportHold:
    def __init__(self) -> None:
        # Message id -> lease_seq of the submit the line answered OK, not recorded yet.
        self._expected: dict[int, int] = {}
        self._held: dict[int, list[tuple[PartReport, _Waiter]]] = {}

    def expect(self, message_id: int, lease_seq: int) -> None:
        """The line took ``message_id`` (try ``lease_seq``); its record is still to come."""
        self._expected[message_id] = lease_seq

    def hold(self, reports: Sequence[PartReport]) -> tuple[list[PartReport], asyncio.Future[None]]:
        """Hold the reports whose submit is expected; returns the others (for the ordinary
        path) and a future done once the held ones are committed (at once if none)."""
        expected = self._expected
        mine: list[PartReport] = []
        rest: list[PartReport] = []
        for r in reports:
            h = r.hint
            if h is not None and expected.get(h.message_id) == h.lease_seq:
                mine.append(r)
            else:
                rest.append(r)
        waiter = _Waiter(len(mine))
        if not mine:
            waiter.future.set_result(None)
        for r in mine:
            assert r.hint is not None
            self._held.setdefault(r.hint.message_id, []).append((r, waiter))
        return rest, waiter.future

    def take(self, message_ids: Collection[int]) -> Taken:
        """Stop expecting ``message_ids`` and hand over their held reports: from here on
        their reports go the ordinary way, behind this record in the writer's queue."""
        out = Taken()
        held = self._held
        expected = self._expected
        for mid in message_ids:
            expected.pop(mid, None)
            got = held.pop(mid, None)
            if got:
                for report, waiter in got:
                    out.reports.append(report)
                    out._waiters.append(waiter)
        return out

    @property
    def expected(self) -> int:
        """Messages answered and not recorded yet (tests)."""
        return len(self._expected)
