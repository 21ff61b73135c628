"""Late reports after a crash (README "Crash safety", issue 13 item 9), on the real store.

The process died between the line's answer and recording it: no part row links the line's refs
to the message, which the reaper leaves UNKNOWN. The line's reports carry its hint (message,
lease, part) and settle the message; never one in another state, never across lines, never a
try before an operator's resend. Runs on SQLite and PostgreSQL (``backend``).
"""

from __future__ import annotations

import pytest

from simgate.domain.events import MessageChange
from simgate.domain.messages import Event, State
from simgate.domain.queue import PartReport, ReportHint
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.store import Store
from tests.support.changes import Batches

from ..store.util import OWNER, account, get, ok, orphans, queue


async def crashed(runtime: Runtime, *, parts: int = 1, line: str = "sim") -> tuple[int, int, int]:
    """A message leased, submitted (nothing recorded) and left UNKNOWN by the reaper; its id,
    its lease_seq and the time."""
    services = runtime.services
    assert services is not None
    acc = await account(services)
    (mid,) = await queue(runtime, acc, 1, parts=parts, line=line)
    now = services.clock.now_ms()
    m = services.messaging
    (leased,) = await m.lease(
        lines=[line], owner=OWNER, now_ms=now, lease_until_ms=now + 10, limit=1
    )
    assert await m.reap(now_ms=now + 11, resend=False) == 1
    assert (await get(runtime.store, mid)).state is State.UNKNOWN
    return mid, leased.lease_seq, now + 20


def hinted(
    mid: int, lease_seq: int, at: int, *codes: int, line: str = "sim", ref: str = "smsc"
) -> list[PartReport]:
    return [
        PartReport(
            line=line,
            line_ref=f"{ref}-{mid}-{i}",
            status_code=code,
            done_ms=at,
            hint=ReportHint(mid, lease_seq, i, len(codes), 3),
        )
        for i, code in enumerate(codes, start=1)
    ]


def change(mid: int, state: State, event: Event, at: int) -> MessageChange:
    return MessageChange(mid, state, event, at)


@pytest.mark.parametrize(
    ("codes", "state", "event"),
    [
        ((0, 0), State.DELIVERED, Event.REPORT_DELIVERED),
        ((0, 69), State.FAILED, Event.REPORT_FAILED),
    ],
    ids=["delivered", "failed"],
)
async def test_hinted_reports_settle_an_unknown_message_once_every_part_came(
    services: Services,
    store: Store,
    runtime: Runtime,
    batches: Batches,
    codes: tuple[int, int],
    state: State,
    event: Event,
) -> None:
    mid, seq, at = await crashed(runtime, parts=2)
    batches.clear()
    m = services.messaging
    first, second = hinted(mid, seq, at, *codes)
    assert await m.record_reports([first], now_ms=at) == 0
    assert (await get(store, mid)).state is State.UNKNOWN  # the other part is still to come
    assert batches == []
    assert await m.record_reports([second], now_ms=at + 1) == 0
    row = await get(store, mid)
    assert (row.state, row.parts_ok, row.parts_reported, row.port) == (state, 2, 2, 3)
    assert row.status_code == max(codes)
    assert await orphans(store) == 0
    # The reports are the submit's answer: "sent" first, then the report's ending.
    assert batches == [
        [change(mid, State.SENT, Event.SUBMIT_OK, at + 1), change(mid, state, event, at + 1)]
    ]
    # A redelivered report is a duplicate now: nothing changes.
    assert await m.record_reports([second], now_ms=at + 2) == 0
    assert len(batches) == 1


async def test_one_hinted_payload_receipt_settles_every_part(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    """A long text sent as one message_payload has one SMSC id and one receipt for all its
    parts: its hint covers them all, and every part row is stored under that one id."""
    mid, seq, at = await crashed(runtime, parts=3)
    batches.clear()
    receipt = PartReport(
        line="sim",
        line_ref="payload-id",
        status_code=0,
        done_ms=at,
        hint=ReportHint(mid, seq, 1, 3, 3, covers=3),
    )
    assert await services.messaging.record_reports([receipt], now_ms=at) == 0
    row = await get(store, mid)
    assert (row.state, row.parts_ok, row.parts_reported) == (State.DELIVERED, 3, 3)
    assert await orphans(store) == 0
    assert batches == [
        [
            change(mid, State.SENT, Event.SUBMIT_OK, at),
            change(mid, State.DELIVERED, Event.REPORT_DELIVERED, at),
        ]
    ]


async def test_reports_that_came_before_the_reaper_settle_when_it_runs(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    """After a restart the line sends its reports at once; the dead worker's lease is still
    running, so they wait as orphans, and the reaper's UNKNOWN lets them settle it."""
    acc = await account(services)
    (mid,) = await queue(runtime, acc)
    now = services.clock.now_ms()
    m = services.messaging
    (leased,) = await m.lease(
        lines=["sim"], owner=OWNER, now_ms=now, lease_until_ms=now + 100, limit=1
    )
    assert await m.record_reports(hinted(mid, leased.lease_seq, now + 1, 0), now_ms=now + 1) == 0
    assert (await get(store, mid)).state is State.SUBMITTING  # its worker's, while it lasts
    assert await orphans(store) == 1
    assert await m.reap(now_ms=now + 101, resend=False) == 1
    assert (await get(store, mid)).state is State.DELIVERED
    assert batches == [
        [
            change(mid, State.UNKNOWN, Event.LEASE_EXPIRED, now + 101),
            change(mid, State.SENT, Event.SUBMIT_OK, now + 101),
            change(mid, State.DELIVERED, Event.REPORT_DELIVERED, now + 101),
        ]
    ]


async def test_a_hint_for_another_line_or_another_lease_is_ignored(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    mid, seq, at = await crashed(runtime)
    batches.clear()
    m = services.messaging
    await m.record_reports(hinted(mid, seq, at, 0, line="b"), now_ms=at)  # never across lines
    await m.record_reports(hinted(mid, seq - 1, at, 0, ref="old"), now_ms=at)  # an older try
    await m.record_reports(hinted(mid, seq + 1, at, 0, ref="new"), now_ms=at)
    assert (await get(store, mid)).state is State.UNKNOWN
    assert batches == []
    assert await orphans(store) == 3  # kept, and purged in time like any orphan


async def test_a_report_of_the_try_before_an_operators_resend_does_not_settle_the_next(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    mid, first_seq, at = await crashed(runtime)
    m = services.messaging
    assert await m.resend_unknown(now_ms=at) == [mid]
    # The second try dies the same way (QUEUED → SUBMITTING → UNKNOWN).
    (again,) = await m.lease(lines=["sim"], owner=OWNER, now_ms=at, lease_until_ms=at + 1, limit=1)
    assert again.lease_seq == first_seq + 1
    assert await m.reap(now_ms=at + 2, resend=False) == 1
    batches.clear()
    # The first try's report (failed) names the first lease: it cannot speak for the second.
    await m.record_reports(hinted(mid, first_seq, at + 3, 69, ref="try1"), now_ms=at + 3)
    assert (await get(store, mid)).state is State.UNKNOWN
    assert batches == []
    await m.record_reports(hinted(mid, again.lease_seq, at + 4, 0, ref="try2"), now_ms=at + 4)
    assert (await get(store, mid)).state is State.DELIVERED


@pytest.mark.parametrize("state", [State.DELIVERED, State.FAILED, State.EXPIRED, State.SENT])
async def test_a_hint_never_moves_a_message_out_of_another_state(
    services: Services, store: Store, runtime: Runtime, batches: Batches, state: State
) -> None:
    mid, seq, at = await crashed(runtime)
    m = services.messaging
    if state is State.EXPIRED:
        await m.expire(now_ms=at + 10**9)
    else:  # the submit is recorded late after all (SENT), and a report may end it
        await m.record_submits([ok(mid)], owner=OWNER, now_ms=at)
        if state is not State.SENT:
            code = 0 if state is State.DELIVERED else 69
            await m.record_reports(
                [PartReport(line="sim", line_ref=f"{mid}.0", status_code=code, done_ms=at)],
                now_ms=at,
            )
    assert (await get(store, mid)).state is state
    before = await get(store, mid)
    batches.clear()
    await m.record_reports(hinted(mid, seq, at + 1, 69, ref="stray"), now_ms=at + 1)
    assert await get(store, mid) == before
    assert batches == []
