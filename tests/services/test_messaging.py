"""The messaging service, cell by cell: each use case's rows and the changes it records.

Runs on the real store (SQLite and PostgreSQL through ``backend``); the changes are caught
by a subscriber of the runtime's change seam, batch by batch as each unit of work hands them.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from simgate.codecs.segments import Encoding
from simgate.domain.events import MessageChange
from simgate.domain.messages import Event, State
from simgate.domain.queue import PartReport, SubmitRecord
from simgate.domain.records import NewMessage
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.store import Store
from simgate.store.tables import messages
from tests.support.changes import Batches
from tests.support.new_messages import new_message

from ..store.util import OWNER, PRICE, account, balance, get, lease_of, orphans, queue
from .support import T0, leased, message_row, write_rows


def change(mid: int, state: State, event: Event, at: int) -> MessageChange:
    return MessageChange(mid, state, event, at)


def ok(mid: int, parts: int = 1) -> SubmitRecord:
    refs = tuple(f"{mid}.{i}" for i in range(parts))
    return SubmitRecord(mid, Event.SUBMIT_OK, port=1, part_refs=refs, first_ref=9, line="sim")


def reports(*pairs: tuple[str, int], at: int) -> list[PartReport]:
    return [PartReport(line="sim", line_ref=r, status_code=c, done_ms=at) for r, c in pairs]


# ---- accept and lease ------------------------------------------------------------------
def _new(mid: int, account_id: int, now: int) -> NewMessage:
    """Two UCS-2 parts (charged 2 x PRICE), valid for a minute."""
    return new_message(
        mid, account_id, encoding=Encoding.UCS2, parts=2, validity_until_ms=now + 60_000
    )


async def test_accept_charges_and_queues_or_does_neither(
    services: Services, store: Store, batches: Batches
) -> None:
    acc = await account(services, balance="0.05")  # 50_000: room for two 2-part messages
    now = services.clock.now_ms()
    a, b, c = await store.new_ids(3, now)
    m = services.messaging
    rows = [_new(a, acc.id, now), _new(b, acc.id, now)]
    assert await m.accept(account_id=acc.id, total_micros=4 * PRICE, rows=rows, now_ms=now)
    assert await balance(services, acc) == 50_000 - 4 * PRICE
    row = await get(store, a)
    assert (row.state, row.charge_micros, row.queued_ms) == (State.QUEUED, 2 * PRICE, now)
    assert row.encoding is Encoding.UCS2
    # Not enough for the next: nothing is queued and nothing is charged.
    assert not await m.accept(
        account_id=acc.id, total_micros=2 * PRICE, rows=[_new(c, acc.id, now)], now_ms=now
    )
    async with store.db.read() as conn:
        assert [r.id for r in await store.messages.get(conn, [a, b, c])] == [a, b]
    assert await balance(services, acc) == 50_000 - 4 * PRICE
    assert batches == []  # queueing is not news


async def test_lease_moves_due_messages_to_submitting_quietly(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    (mid,) = await leased(runtime)
    m = await get(store, mid)
    assert (m.state, m.submitting_ms) == (State.SUBMITTING, services.clock.now_ms())
    assert (await lease_of(store, mid))[0] == OWNER
    assert batches == []


# ---- submit answers: (event, state reached, refunded, recorded) -----------------------
SUBMITS = [
    (Event.SUBMIT_OK, State.SENT, False, True),
    (Event.SUBMIT_RETRY, State.QUEUED, False, False),
    (Event.SUBMIT_REJECTED, State.REJECTED, True, True),
    (Event.SUBMIT_FAILED, State.FAILED, False, True),
    (Event.LEASE_EXPIRED, State.UNKNOWN, False, True),
]


@pytest.mark.parametrize(
    ("event", "state", "refunded", "recorded"), SUBMITS, ids=[e.value for e, *_ in SUBMITS]
)
async def test_submit_answer(
    services: Services,
    store: Store,
    runtime: Runtime,
    batches: Batches,
    event: Event,
    state: State,
    refunded: bool,
    recorded: bool,
) -> None:
    (mid,) = await leased(runtime, parts=2)
    acc_id = (await get(store, mid)).account_id
    before = (await services.accounts.get_account(acc_id)).balance_micros
    at = services.clock.now_ms() + 10
    record = ok(mid, 2) if event is Event.SUBMIT_OK else SubmitRecord(mid, event, retry_at_ms=at)
    await services.messaging.record_submits([record], owner=OWNER, now_ms=at)
    m = await get(store, mid)
    assert m.state is state
    assert await lease_of(store, mid) == (None, None)
    assert m.charge_micros == (0 if refunded else 2 * PRICE)
    after = (await services.accounts.get_account(acc_id)).balance_micros
    assert after - before == (2 * PRICE if refunded else 0)
    assert batches == ([[change(mid, state, event, at)]] if recorded else [])
    async with store.db.read() as conn:
        parts = await store.messages.parts_of(conn, mid)
    assert [p["line_ref"] for p in parts] == (
        [f"{mid}.0", f"{mid}.1"] if state is State.SENT else []
    )
    if event is Event.SUBMIT_RETRY:
        assert (m.attempts, m.queued_ms) == (1, at)


async def test_answers_of_a_lost_lease_change_nothing(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    (mid,) = await leased(runtime)
    at = services.clock.now_ms() + 10
    await services.messaging.record_submits(
        [ok(mid), SubmitRecord(mid, Event.SUBMIT_REJECTED)], owner="someone-else", now_ms=at
    )
    assert (await get(store, mid)).state is State.SUBMITTING
    assert await lease_of(store, mid) == (OWNER, services.clock.now_ms() + 30_000)
    assert batches == []


async def test_one_batch_of_mixed_answers_is_one_unit_of_work(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    a, b, c = await leased(runtime, 3)
    at = services.clock.now_ms() + 10
    await services.messaging.record_submits(
        [ok(a), SubmitRecord(b, Event.SUBMIT_FAILED), SubmitRecord(c, Event.SUBMIT_RETRY)],
        owner=OWNER,
        now_ms=at,
    )
    assert [(await get(store, x)).state for x in (a, b, c)] == [
        State.SENT,
        State.FAILED,
        State.QUEUED,
    ]
    assert batches == [
        [
            change(a, State.SENT, Event.SUBMIT_OK, at),
            change(b, State.FAILED, Event.SUBMIT_FAILED, at),
        ]
    ]


# ---- delivery reports -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("codes", "state", "event", "code"),
    [
        ((0, 0), State.DELIVERED, Event.REPORT_DELIVERED, 0),
        ((0, 69), State.FAILED, Event.REPORT_FAILED, 69),
    ],
    ids=["delivered", "worst-part-fails"],
)
async def test_reports_settle_when_every_part_is_reported(
    services: Services,
    store: Store,
    runtime: Runtime,
    batches: Batches,
    codes: tuple[int, int],
    state: State,
    event: Event,
    code: int,
) -> None:
    (mid,) = await leased(runtime, parts=2)
    now = services.clock.now_ms()
    await services.messaging.record_submits([ok(mid, 2)], owner=OWNER, now_ms=now)
    batches.clear()
    m = services.messaging
    assert await m.record_reports(reports((f"{mid}.0", codes[0]), at=now + 1), now_ms=now + 1) == 1
    row = await get(store, mid)
    assert (row.state, row.parts_reported) == (State.SENT, 1)
    assert batches == []  # half reported is not news
    assert await m.record_reports(reports((f"{mid}.1", codes[1]), at=now + 2), now_ms=now + 2) == 1
    row = await get(store, mid)
    assert (row.state, row.parts_reported, row.status_code) == (state, 2, code)
    assert row.final_ms == now + 2
    assert row.charge_micros == 2 * PRICE  # it left simgate: never refunded
    assert batches == [[change(mid, state, event, now + 2)]]
    # A redelivered report changes nothing and records nothing.
    assert await m.record_reports(reports((f"{mid}.1", 0), at=now + 3), now_ms=now + 3) == 0
    assert len(batches) == 1


async def test_orphan_reports_are_adopted_when_the_submit_is_recorded(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    (mid,) = await leased(runtime, parts=2)
    now = services.clock.now_ms()
    m = services.messaging
    got = await m.record_reports(reports((f"{mid}.0", 0), (f"{mid}.1", 0), at=now), now_ms=now)
    assert got == 0
    assert await orphans(store) == 2
    assert batches == []
    await m.record_submits([ok(mid, 2)], owner=OWNER, now_ms=now + 5)
    row = await get(store, mid)
    assert (row.state, row.parts_reported, row.delivered_ms) == (State.DELIVERED, 2, now + 5)
    assert await orphans(store) == 0
    # One unit of work, in causal order: the submit, then the reports that overtook it
    # (spec, Amendments: "sent" is pushed before "delivered").
    assert batches == [
        [
            change(mid, State.SENT, Event.SUBMIT_OK, now + 5),
            change(mid, State.DELIVERED, Event.REPORT_DELIVERED, now + 5),
        ]
    ]


async def test_every_submit_of_a_batch_comes_before_any_adopted_report(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    a, b, c, d = await leased(runtime, 4, parts=2)
    now = services.clock.now_ms()
    m = services.messaging
    # a: both parts delivered early; b: one part failed early (the other comes later);
    # c: no early report; d: both parts early, one failed.
    early = reports(
        (f"{a}.0", 0), (f"{a}.1", 0), (f"{b}.0", 69), (f"{d}.0", 0), (f"{d}.1", 69), at=now
    )
    assert await m.record_reports(early, now_ms=now) == 0
    await m.record_submits([ok(x, 2) for x in (a, b, c, d)], owner=OWNER, now_ms=now + 5)
    assert [(await get(store, x)).state for x in (a, b, c, d)] == [
        State.DELIVERED,
        State.SENT,
        State.SENT,
        State.FAILED,
    ]
    (batch,) = batches
    assert batch[:4] == [change(x, State.SENT, Event.SUBMIT_OK, now + 5) for x in (a, b, c, d)]
    assert len(batch) == 6
    assert set(batch[4:]) == {
        change(a, State.DELIVERED, Event.REPORT_DELIVERED, now + 5),
        change(d, State.FAILED, Event.REPORT_FAILED, now + 5),
    }


async def test_purge_forgets_old_orphans(services: Services, store: Store) -> None:
    now = services.clock.now_ms()
    m = services.messaging
    await m.record_reports(reports(("x.0", 0), at=now), now_ms=now)
    await m.record_reports(reports(("y.0", 0), at=now), now_ms=now + 10)
    assert await m.purge_orphans(older_than_ms=now + 1) == 1
    assert await orphans(store) == 1


# ---- the client and housekeeping ------------------------------------------------------
async def test_cancel_stops_queued_refunds_and_records(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    acc = await account(services)
    a, b = await queue(runtime, acc, 2, parts=3)
    now = services.clock.now_ms()
    await services.messaging.lease(
        lines=["sim"], owner=OWNER, now_ms=now, lease_until_ms=now + 1000, limit=1
    )
    (sub,) = [x for x in (a, b) if (await get(store, x)).state is State.SUBMITTING]
    (qd,) = {a, b} - {sub}
    before = await balance(services, acc)
    assert await services.messaging.cancel([a, b, 42], now_ms=now + 7) == [qd]
    row = await get(store, qd)
    assert (row.state, row.error_text, row.charge_micros, row.rejected_ms) == (
        State.REJECTED, "stopped", 0, now + 7,
    )  # fmt: skip
    assert await balance(services, acc) == before + 3 * PRICE
    assert (await get(store, sub)).state is State.SUBMITTING
    assert batches == [[change(qd, State.REJECTED, Event.CANCEL, now + 7)]]
    assert await services.messaging.cancel([qd], now_ms=now + 8) == []
    assert len(batches) == 1


async def test_expire_ends_queued_sent_and_unknown_and_refunds_queued_only(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    acc = await account(services)
    ids = await queue(runtime, acc, 3, validity_s=60)
    now = services.clock.now_ms()
    m = services.messaging
    got = await m.lease(lines=["sim"], owner=OWNER, now_ms=now, lease_until_ms=now + 10, limit=2)
    sent, unknown = (x.id for x in got)
    (queued,) = set(ids) - {sent, unknown}
    await m.record_submits([ok(sent)], owner=OWNER, now_ms=now)
    assert await m.reap(now_ms=now + 11, resend=False) == 1
    batches.clear()
    before = await balance(services, acc)
    at = now + 60_001
    assert await m.expire(now_ms=at) == 3
    for mid in (sent, unknown, queued):
        row = await get(store, mid)
        assert (row.state, row.expired_ms) == (State.EXPIRED, at)
        assert row.charge_micros == (0 if mid == queued else PRICE)
    assert await balance(services, acc) == before + PRICE
    (batch,) = batches
    assert len(batch) == 3
    assert set(batch) == {
        change(x, State.EXPIRED, Event.EXPIRE, at) for x in (sent, unknown, queued)
    }
    assert await m.expire(now_ms=at + 1) == 0


@pytest.mark.parametrize("resend", [False, True], ids=["unknown", "resend"])
async def test_reap_lapsed_leases(
    services: Services, store: Store, runtime: Runtime, batches: Batches, resend: bool
) -> None:
    acc = await account(services)
    (mid,) = await queue(runtime, acc)
    now = services.clock.now_ms()
    m = services.messaging
    await m.lease(lines=["sim"], owner=OWNER, now_ms=now, lease_until_ms=now + 100, limit=1)
    assert await m.reap(now_ms=now + 100, resend=resend) == 0  # not past its time yet
    assert await m.reap(now_ms=now + 101, resend=resend) == 1
    row = await get(store, mid)
    # An UNKNOWN row keeps whose lease it was: that worker's write journal may still show it
    # never left (MessagingService.recover_lease).
    assert await lease_of(store, mid) == (None if resend else OWNER, None)
    if resend:
        assert (row.state, row.attempts) == (State.QUEUED, 0)
        assert batches == []  # back in the queue: not news
        async with store.db.read() as conn:
            due = (
                await conn.execute(select(messages.c.next_attempt_ms).where(messages.c.id == mid))
            ).scalar_one()
        assert due == now + 101
    else:
        assert (row.state, row.unknown_ms) == (State.UNKNOWN, now + 101)
        assert batches == [[change(mid, State.UNKNOWN, Event.LEASE_EXPIRED, now + 101)]]
    assert row.charge_micros == PRICE  # no refund either way: it may have left


async def test_a_late_success_resolves_unknown(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    acc = await account(services)
    (mid,) = await queue(runtime, acc)
    now = services.clock.now_ms()
    m = services.messaging
    await m.lease(lines=["sim"], owner=OWNER, now_ms=now, lease_until_ms=now + 1, limit=1)
    await m.reap(now_ms=now + 2, resend=False)
    await m.record_submits([ok(mid)], owner=OWNER, now_ms=now + 3)
    assert (await get(store, mid)).state is State.SENT
    assert batches[-1] == [change(mid, State.SENT, Event.SUBMIT_OK, now + 3)]
    await m.record_reports(reports((f"{mid}.0", 0), at=now + 4), now_ms=now + 4)
    assert (await get(store, mid)).state is State.DELIVERED
    assert batches[-1] == [change(mid, State.DELIVERED, Event.REPORT_DELIVERED, now + 4)]


# ---- the operator's resend ------------------------------------------------------------
async def test_operator_resend_requeues_unknown_only_in_one_unit_of_work(
    services: Services, store: Store, runtime: Runtime, batches: Batches
) -> None:
    await account(services)
    t = T0 + 1_000
    rows = {
        "old": message_row(at_ms=t, seq=1, state=State.UNKNOWN, unknown_ms=t + 10),
        "new": message_row(at_ms=t, seq=2, state=State.UNKNOWN, unknown_ms=t + 500),
        "smpp": message_row(at_ms=t, seq=3, state=State.UNKNOWN, unknown_ms=t + 500, line="b"),
        **{
            s.name: message_row(at_ms=t, seq=10 + s, state=s, lease_owner="w", unknown_ms=None)
            for s in State
            if s is not State.UNKNOWN
        },
    }
    await write_rows(store, message_rows=list(rows.values()))
    mid = {k: r["id"] for k, r in rows.items()}
    m = services.messaging
    before = {k: await get(store, v) for k, v in mid.items()}
    # The dry run lists, changes nothing and records nothing.
    assert await m.unknown() == sorted([mid["old"], mid["new"], mid["smpp"]])
    assert await m.unknown(since_ms=t + 500, line="sim") == [mid["new"]]
    assert {k: await get(store, v) for k, v in mid.items()} == before
    at = t + 9_000
    assert await m.resend_unknown(now_ms=at, since_ms=t + 100) == sorted([mid["new"], mid["smpp"]])
    assert await m.resend_unknown(now_ms=at, line="sim") == [mid["old"]]
    for k in ("new", "smpp", "old"):
        row = await get(store, mid[k])
        assert (row.state, row.queued_ms, row.updated_ms) == (State.QUEUED, at, at)
        assert row.charge_micros == before[k].charge_micros  # still to be sent: no refund
    async with store.db.read() as conn:
        due = (
            await conn.execute(
                select(messages.c.next_attempt_ms).where(messages.c.id == mid["old"])
            )
        ).scalar_one()
    assert due == at
    for s in State:  # every other state untouched, SUBMITTING (RESEND's other source) too
        if s is not State.UNKNOWN:
            assert await get(store, mid[s.name]) == before[s.name], s
    assert batches == [
        [change(x, State.QUEUED, Event.RESEND, at) for x in sorted([mid["new"], mid["smpp"]])],
        [change(mid["old"], State.QUEUED, Event.RESEND, at)],
    ]
    assert await m.resend_unknown(now_ms=at + 1) == []
    assert len(batches) == 2
    # Back in the queue and due: a worker leases them again.
    got = await m.lease(lines=["sim", "b"], owner=OWNER, now_ms=at, lease_until_ms=at + 1, limit=9)
    assert {x.id for x in got} == {mid["old"], mid["new"], mid["smpp"], mid["QUEUED"]}
