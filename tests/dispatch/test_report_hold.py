"""ReportHold: which reports wait for their submit's record, and when the line hears back."""

from __future__ import annotations

import asyncio

import pytest

from simgate.dispatch.report_hold import ReportHold
from simgate.domain.queue import PartReport, ReportHint
from simgate.errors import StoreError


def report(mid: int, lease_seq: int, part: int = 1, *, hinted: bool = True) -> PartReport:
    hint = ReportHint(mid, lease_seq, part, 2, 0) if hinted else None
    return PartReport(line="sim", line_ref=f"{mid}.{part - 1}", status_code=0, done_ms=5, hint=hint)


async def test_only_reports_of_an_expected_submit_and_try_are_held() -> None:
    hold = ReportHold()
    hold.expect(1, lease_seq=3)
    mine, old_try, other, bare = (
        report(1, 3),
        report(1, 2),
        report(2, 3),
        report(1, 3, hinted=False),
    )
    rest, done = hold.hold([mine, old_try, other, bare])
    assert rest == [old_try, other, bare]
    assert not done.done()
    taken = hold.take([1, 2])
    assert taken.reports == [mine]
    assert hold.expected == 0
    taken.committed()
    await asyncio.wait_for(done, 1)


async def test_a_call_is_answered_once_every_report_it_held_is_committed() -> None:
    hold = ReportHold()
    hold.expect(1, 1)
    hold.expect(2, 1)
    rest, done = hold.hold([report(1, 1), report(2, 1)])
    assert rest == []
    hold.take([1]).committed()
    await asyncio.sleep(0)
    assert not done.done()  # message 2's record is still to come
    hold.take([2]).committed()
    await asyncio.wait_for(done, 1)


async def test_nothing_held_answers_at_once_and_taken_ids_are_no_longer_expected() -> None:
    hold = ReportHold()
    rest, done = hold.hold([report(1, 1)])
    assert done.done()
    assert rest == [report(1, 1)]
    hold.expect(1, 1)
    assert hold.take([1]).reports == []
    rest, done = hold.hold([report(1, 1)])  # after the take: the ordinary way
    assert done.done()
    assert len(rest) == 1


async def test_a_record_that_gives_up_fails_the_line_call() -> None:
    """The line then keeps its reports and offers them again (as an unanswered deliver_sm)."""
    hold = ReportHold()
    hold.expect(1, 1)
    _, done = hold.hold([report(1, 1)])
    hold.take([1]).failed(StoreError("database away"))
    with pytest.raises(StoreError):
        await asyncio.wait_for(done, 1)
