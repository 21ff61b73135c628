"""The voice call queue and records (spec §1.11-§1.16; store/calls.py, store/call_records.py)."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain import ids
from simgate.domain.accounts import Account
from simgate.domain.billing import voice_charge
from simgate.domain.calls import (
    SIP_BUSY,
    SIP_OK,
    SIP_SERVER_ERROR,
    CallFinal,
    CallKind,
    CallOptions,
    CallRecord,
    CallResult,
    CallState,
    LeasedCall,
    NewCall,
    Pricing,
)
from simgate.domain.events import CallDone, Change
from simgate.runtime import Runtime
from simgate.secretbox import SecretBox
from simgate.services.container import Services
from simgate.store import Database, Store
from simgate.store.call_records import HOUR_MS, hour_of
from simgate.store.voice_tables import call_hours, calls

OWNER = "voice-a"
USD = Pricing(rate_micros=120_000, bill_period="20+20", currency="USD", quote_exchange_micros=None)
EUR = Pricing(
    rate_micros=120_000, bill_period="60+60", currency="EUR", quote_exchange_micros=938_000
)


def new_call(
    acc: Account,
    call_id: int,
    submit_ms: int,
    *,
    pricing: Pricing = USD,
    options: CallOptions | None = None,
    callee: str = "8613800138000",
) -> NewCall:
    return NewCall(
        id=call_id,
        account_id=acc.id,
        app_id=7,
        kind=CallKind.GROUP,
        callee=callee,
        audio_id=3,
        file_id="1202211220000abc.mp3",
        area="China(Beijing)",
        options=options or CallOptions(display_num="1008122211", called_info="hi"),
        pricing=pricing,
        submit_ms=submit_ms,
    )


async def queue(runtime: Runtime, acc: Account, n: int = 1, **kw: Any) -> list[int]:
    store, now = runtime.store, runtime.clock.now_ms()
    call_ids = await store.new_ids(n, now)
    rows = [new_call(acc, cid, now, **kw) for cid in call_ids]
    await store.db.write(functools.partial(store.calls.insert, calls=rows))
    return call_ids


async def lease(
    store: Store, now_ms: int, *, owner: str = OWNER, limit: int = 100, lease_ms: int = 60_000
) -> list[LeasedCall]:
    job = functools.partial(
        store.calls.lease, owner=owner, now_ms=now_ms, lease_until_ms=now_ms + lease_ms, limit=limit
    )
    return await store.db.write(job)


def result(
    call_id: int, at_ms: int, *, answered: bool = True, talk_ms: int = 25_300, dtmf: str = "1"
) -> CallResult:
    if answered:
        return CallResult(
            call_id, "sip1", at_ms, at_ms + 2000, at_ms + 5000, at_ms + 5000 + talk_ms, SIP_OK,
            "success", dtmf,
        )  # fmt: skip
    return CallResult(call_id, "sip1", at_ms, at_ms + 2000, None, at_ms + 30_000, SIP_BUSY, "busy")


def final(r: CallResult, pricing: Pricing = USD) -> CallFinal:
    charge = voice_charge(
        answered=r.answered,
        duration_s=r.duration_s,
        rate_micros=pricing.rate_micros,
        bill_period=pricing.bill_period,
        currency=pricing.currency,
        quote_exchange_micros=pricing.quote_exchange_micros,
    )
    return CallFinal(r, charge)


async def finish(
    services: Services, finals: Sequence[CallFinal], now_ms: int, *, owner: str = OWNER
) -> list[int]:
    return await services.calls.finish(finals=finals, owner=owner, now_ms=now_ms)


async def record(store: Store, call_id: int) -> CallRecord:
    async with store.db.read() as conn:
        found = await store.calls.get_one(conn, call_id)
    assert found is not None
    return found


async def lease_of(store: Store, call_id: int) -> tuple[str | None, int | None]:
    async with store.db.read() as conn:
        row = (
            await conn.execute(
                select(calls.c.lease_owner, calls.c.lease_until_ms).where(calls.c.id == call_id)
            )
        ).one()
    return row.lease_owner, row.lease_until_ms


async def hours(store: Store) -> dict[tuple[int, int], int]:
    async with store.db.read() as conn:
        rows = await conn.execute(select(call_hours))
        return {(r.account_id, r.hour): int(r.n) for r in rows}


async def hours_from_calls(store: Store) -> dict[tuple[int, int], int]:
    """What call_hours must hold: DONE calls counted per account and voiceId hour."""
    async with store.db.read() as conn:
        rows = await conn.execute(
            select(calls.c.account_id, calls.c.id).where(calls.c.state == int(CallState.DONE))
        )
        out: dict[tuple[int, int], int] = {}
        for account_id, cid in rows:
            hour = hour_of(cid)
            assert hour is not None
            out[(account_id, hour)] = out.get((account_id, hour), 0) + 1
        return out


def capture(runtime: Runtime) -> list[Change]:
    seen: list[Change] = []

    async def hook(_conn: AsyncConnection, events: Sequence[Change]) -> None:
        seen.extend(e for e in events if isinstance(e, CallDone))

    runtime.changes.subscribe(hook)
    return seen


async def balances(services: Services, acc: Account) -> tuple[int, int]:
    a = await services.accounts.get_account(acc.id)
    return a.gift_micros, a.balance_micros


# ---- accept and lease ------------------------------------------------------------------
async def test_insert_queues_the_call_with_its_options_and_price(
    services: Services, runtime: Runtime
) -> None:
    store, now = runtime.store, services.clock.now_ms()
    acc = await services.accounts.create_account(name="acme", balance="1")
    options = CallOptions("1008", 3, "info", 2, 600, 45, 30)
    (cid,) = await queue(runtime, acc, options=options, pricing=EUR)
    r = await record(store, cid)
    assert (r.state, r.kind, r.callee, r.display_num, r.area) == (
        CallState.QUEUED, CallKind.GROUP, "8613800138000", "1008", "China(Beijing)",
    )  # fmt: skip
    assert (r.loop_count, r.called_info, r.recall_count, r.recalls_done) == (3, "info", 2, 0)
    assert (r.submit_ms, r.updated_ms, r.call_ms, r.hangup_ms, r.sip_code) == (
        now, now, None, None, None,
    )  # fmt: skip
    assert (r.bill_period, r.rate_micros, r.currency, r.quote_exchange_micros) == (
        "60+60", 120_000, "EUR", 938_000,
    )  # fmt: skip
    assert (r.cost_micros, r.charged_duration_s, r.dtmf, r.feedback_value) == (0, 0, "", "-1")
    assert r.file_id == "1202211220000abc.mp3"
    (leased,) = await lease(store, now)
    assert leased.pricing == EUR
    assert (leased.max_duration_s, leased.max_ringing_s, leased.recall_interval_s) == (45, 30, 600)
    assert (leased.loop_count, leased.audio_id, leased.line) == (3, 3, None)
    async with store.db.read() as conn:
        assert await store.calls.get(conn, [cid, 123, cid]) == [await record(store, cid)]
        assert await store.calls.get_one(conn, 123) is None
        assert await store.calls.queue_depth(conn) == 1  # CALLING counts


async def test_lease_takes_due_calls_oldest_first_up_to_the_limit(
    services: Services, store: Store
) -> None:
    now = services.clock.now_ms()
    acc = await services.accounts.create_account(name="acme", balance="1")
    base = ids.compose(now, 0)
    rows = [new_call(acc, base + i, now + due) for i, due in enumerate([5000, 0, 3000, 1000])]
    await store.db.write(functools.partial(store.calls.insert, calls=rows))
    await store.db.write(functools.partial(store.calls.insert, calls=[]))  # nothing: no-op
    assert await lease(store, now - 1) == []
    first = await lease(store, now + 3000, limit=2)
    assert [c.id for c in first] == [base + 1, base + 3]
    assert await lease_of(store, base + 1) == (OWNER, now + 3000 + 60_000)
    rest = await lease(store, now + 3000)
    assert [c.id for c in rest] == [base + 2]
    assert await lease(store, now + 3000, limit=0) == []
    assert [c.id for c in await lease(store, now + 5000)] == [base]
    assert (await record(store, base)).state is CallState.CALLING


async def test_two_owners_leasing_at_once_never_share_a_call(
    services: Services, runtime: Runtime, backend: str
) -> None:
    """Two processes (two databases' connections) lease concurrently: no call twice."""
    store, now = runtime.store, services.clock.now_ms()
    acc = await services.accounts.create_account(name="acme", balance="1")
    await queue(runtime, acc, 300)
    other = Database(backend)
    await other.open()
    try:
        second = Store(other, SecretBox("test-master-key-0123456789"))

        async def drain(s: Store, owner: str) -> list[int]:
            got: list[int] = []
            while batch := await lease(s, now, owner=owner, limit=7):
                got.extend(c.id for c in batch)
                await asyncio.sleep(0)
            return got

        a, b = await asyncio.gather(drain(store, "a"), drain(second, "b"))
    finally:
        await other.close()
    assert len(a) + len(b) == 300
    assert len(set(a) | set(b)) == 300
    for cid in a[:3] + b[:3]:
        assert (await lease_of(store, cid))[0] == ("a" if cid in a else "b")


# ---- results ---------------------------------------------------------------------------
async def test_finish_records_the_result_charges_counts_and_announces(
    services: Services,
    runtime: Runtime,
) -> None:
    store, now = runtime.store, services.clock.now_ms()
    seen = capture(runtime)
    acc = await services.accounts.create_account(name="acme", balance="1")
    await services.accounts.topup(acc.id, amount="0.01", gift=True)
    a, b = await queue(runtime, acc, 2)
    await lease(store, now)
    fa, fb = final(result(a, now)), final(result(b, now, answered=False))
    assert fa.charge.charged_duration_s == 40  # 25.3 s talk → 25 s → two 20 s steps
    assert fa.charge.cost_micros == 80_000
    assert await finish(services, [fa, fb, fa], now + 40_000) == [a, b]
    ra, rb = await record(store, a), await record(store, b)
    assert ra.state is rb.state is CallState.DONE
    assert (ra.line, ra.call_ms, ra.ringing_ms, ra.answer_ms, ra.hangup_ms) == (
        "sip1", now, now + 2000, now + 5000, now + 30_300,
    )  # fmt: skip
    assert (ra.sip_code, ra.reason, ra.dtmf, ra.feedback_value) == (SIP_OK, "success", "1", "1")
    assert (ra.call_duration_s, ra.charged_duration_s) == (25, 40)
    assert (ra.base_cost_micros, ra.cost_micros, ra.updated_ms) == (80_000, 80_000, now + 40_000)
    assert (rb.sip_code, rb.reason, rb.answer_ms, rb.call_duration_s, rb.cost_micros) == (
        SIP_BUSY, "busy", None, 0, 0,
    )  # fmt: skip
    assert await lease_of(store, a) == (None, None)
    # Gift first (0.01), the rest from the balance.
    assert await balances(services, acc) == (0, 1_000_000 - 70_000)
    assert seen == [CallDone(a, now + 40_000), CallDone(b, now + 40_000)]
    assert await hours(store) == {(acc.id, hour_of(a)): 2}
    # Finishing again changes nothing: not charged twice, not counted twice, no event.
    assert await finish(services, [fa], now + 50_000) == []
    assert await balances(services, acc) == (0, 930_000)
    assert await hours(store) == {(acc.id, hour_of(a)): 2}
    assert len(seen) == 2
    async with store.db.read() as conn:
        assert await store.calls.queue_depth(conn) == 0


async def test_non_usd_account_pays_the_settled_amount(
    services: Services, runtime: Runtime
) -> None:
    store, now = runtime.store, services.clock.now_ms()
    acc = await services.accounts.create_account(name="euro", balance="1", currency="EUR")
    (cid,) = await queue(runtime, acc, pricing=EUR)
    (leased,) = await lease(store, now)
    f = final(result(cid, now, talk_ms=61_000), leased.pricing)
    assert f.charge.settle_pay_micros is not None
    assert f.charge.debit_micros == f.charge.settle_pay_micros != f.charge.cost_micros
    assert await finish(services, [f], now) == [cid]
    r = await record(store, cid)
    assert (r.charged_duration_s, r.cost_micros, r.currency) == (120, 240_000, "EUR")
    assert (r.quote_exchange_micros, r.settle_rate_micros, r.settle_pay_micros) == (
        938_000, f.charge.settle_rate_micros, f.charge.settle_pay_micros,
    )  # fmt: skip
    assert await balances(services, acc) == (0, 1_000_000 - f.charge.settle_pay_micros)


async def test_a_lost_lease_changes_nothing(services: Services, runtime: Runtime) -> None:
    store, now = runtime.store, services.clock.now_ms()
    seen = capture(runtime)
    acc = await services.accounts.create_account(name="acme", balance="1")
    (cid,) = await queue(runtime, acc, options=CallOptions(recall_count=2))
    await lease(store, now, owner="a")
    r = result(cid, now)
    assert await finish(services, [final(r)], now, owner="b") == []
    assert not await store.db.write(
        functools.partial(store.calls.redial, result=r, owner="b", next_attempt_ms=now, now_ms=now)
    )
    released = functools.partial(
        store.calls.release, ids=[cid], owner="b", retry_at_ms=now, now_ms=now
    )
    assert await store.db.write(released) == 0
    assert (await record(store, cid)).state is CallState.CALLING
    assert await lease_of(store, cid) == ("a", now + 60_000)
    assert await balances(services, acc) == (0, 1_000_000)
    assert seen == []
    assert await hours(store) == {}


async def test_redial_keeps_the_attempt_and_queues_again(
    services: Services, runtime: Runtime
) -> None:
    store, now = runtime.store, services.clock.now_ms()
    seen = capture(runtime)
    acc = await services.accounts.create_account(name="acme", balance="1")
    (cid,) = await queue(runtime, acc, options=CallOptions(recall_count=1, recall_interval_s=300))
    await lease(store, now)
    miss = result(cid, now, answered=False)
    job = functools.partial(
        store.calls.redial, result=miss, owner=OWNER, next_attempt_ms=now + 300_000, now_ms=now
    )
    assert await store.db.write(job)
    r = await record(store, cid)
    assert (r.state, r.recalls_done, r.sip_code, r.reason, r.line, r.hangup_ms) == (
        CallState.QUEUED, 1, SIP_BUSY, "busy", "sip1", now + 30_000,
    )  # fmt: skip
    assert await lease_of(store, cid) == (None, None)
    assert await store.db.write(job) is False  # not CALLING any more
    assert seen == []
    assert await balances(services, acc) == (0, 1_000_000)
    assert await lease(store, now + 299_999) == []
    (again,) = await lease(store, now + 300_000)
    assert (again.recalls_done, again.line) == (1, "sip1")
    assert await finish(services, [final(result(cid, now + 300_000))], now + 330_000) == [cid]
    r = await record(store, cid)
    assert (r.state, r.sip_code, r.recalls_done, r.call_ms) == (
        CallState.DONE, SIP_OK, 1, now + 300_000,
    )  # fmt: skip
    assert len(seen) == 1


async def test_release_queues_again_without_counting(services: Services, runtime: Runtime) -> None:
    store, now = runtime.store, services.clock.now_ms()
    acc = await services.accounts.create_account(name="acme", balance="1")
    a, b = await queue(runtime, acc, 2)
    await lease(store, now)
    job = functools.partial(
        store.calls.release, ids=[a, a, 999], owner=OWNER, retry_at_ms=now + 2000, now_ms=now
    )
    assert await store.db.write(job) == 1
    r = await record(store, a)
    assert (r.state, r.recalls_done, r.sip_code, r.call_ms) == (CallState.QUEUED, 0, None, None)
    assert (await record(store, b)).state is CallState.CALLING
    assert await lease(store, now + 1999) == []
    assert [c.id for c in await lease(store, now + 2000)] == [a]


async def test_reap_ends_lost_calls_uncharged_and_never_redials(
    services: Services, runtime: Runtime
) -> None:
    store, now = runtime.store, services.clock.now_ms()
    seen = capture(runtime)
    acc = await services.accounts.create_account(name="euro", balance="1", currency="EUR")
    a, b = await queue(runtime, acc, 2, pricing=EUR, options=CallOptions(recall_count=3))
    await lease(store, now, limit=1, lease_ms=10_000)
    await lease(store, now, limit=1, lease_ms=90_000)
    reap = services.calls.reap
    assert await reap(now_ms=now + 10_000) == 0  # not past
    assert await reap(now_ms=now + 10_001) == 1
    r = await record(store, a)
    assert (r.state, r.sip_code, r.reason, r.hangup_ms) == (
        CallState.DONE, SIP_SERVER_ERROR, "call lost", now + 10_001,
    )  # fmt: skip
    assert (r.call_duration_s, r.charged_duration_s, r.base_cost_micros, r.cost_micros) == (
        0, 0, 0, 0,
    )  # fmt: skip
    assert r.settle_pay_micros == 0
    assert (await record(store, b)).state is CallState.CALLING
    assert seen == [CallDone(a, now + 10_001)]
    assert await hours(store) == {(acc.id, hour_of(a)): 1}
    assert await balances(services, acc) == (0, 1_000_000)
    # The lost worker's late result changes nothing; the call is not leased again.
    assert await finish(services, [final(result(a, now), EUR)], now + 20_000) == []
    assert await lease(store, now + 10**9) == []
    assert await reap(now_ms=now + 10**9) == 1  # b
    assert await hours_from_calls(store) == await hours(store) == {(acc.id, hour_of(a)): 2}


async def test_debit_takes_gift_first_and_may_overdraw(services: Services, store: Store) -> None:
    acc = await services.accounts.create_account(name="acme", balance="1", credit="0.5")
    await services.accounts.topup(acc.id, amount="0.3", gift=True)

    async def debit(amount: int) -> tuple[int, int]:
        await store.db.write(
            functools.partial(store.accounts.debit, account_id=acc.id, amount=amount)
        )
        return await balances(services, acc)

    assert await debit(200_000) == (100_000, 1_000_000)
    assert await debit(300_000) == (0, 800_000)
    assert await debit(0) == (0, 800_000)
    assert await debit(-5) == (0, 800_000)
    # Beyond the credit line: the call happened, so it is paid all the same.
    assert await debit(2_000_000) == (0, -1_200_000)


# ---- the record query over call_hours ----------------------------------------------------
async def _naive(
    store: Store, account_id: int, lo: int, hi: int, offset: int, limit: int
) -> tuple[int, list[int]]:
    where = (
        calls.c.account_id == account_id,
        calls.c.state == int(CallState.DONE),
        calls.c.id >= lo,
        calls.c.id <= hi,
    )
    async with store.db.read() as conn:
        total = (await conn.execute(select(func.count()).where(*where))).scalar_one()
        page = await conn.execute(
            select(calls.c.id).where(*where).order_by(calls.c.id).offset(offset).limit(limit)
        )
        return int(total), [r.id for r in page]


async def test_count_and_page_done_equal_the_naive_queries(
    services: Services, store: Store
) -> None:
    """Random DONE/other calls of two accounts over 9 hours; random windows and offsets."""
    now = services.clock.now_ms()
    rng = random.Random(20261122)
    acc = await services.accounts.create_account(name="acme", balance="1000")
    other = await services.accounts.create_account(name="beta", balance="1000")
    start = now - now % HOUR_MS - 4 * HOUR_MS
    span = 9 * HOUR_MS
    taken: set[int] = set()
    rows: list[NewCall] = []
    for seq in range(420):
        # Clusters at hour edges, so windows and pages often start or end on one.
        at = start + (
            rng.randrange(span)
            if rng.random() < 0.7
            else rng.randrange(1, 9) * HOUR_MS + rng.choice([-1000, 0, 1000])
        )
        cid = ids.compose(at, seq)
        taken.add(cid)
        rows.append(new_call(acc if rng.random() < 0.75 else other, cid, now))
    await store.db.write(functools.partial(store.calls.insert, calls=rows))
    leased = await lease(store, now, limit=1000)
    assert len(leased) == 420
    fate = {c.id: rng.random() for c in leased}
    done = [final(result(cid, now)) for cid, x in fate.items() if x < 0.8]
    back = [cid for cid, x in fate.items() if 0.8 <= x < 0.9]
    for i in range(0, len(done), 50):  # several transactions
        await finish(services, done[i : i + 50], now)
    await store.db.write(
        functools.partial(store.calls.release, ids=back, owner=OWNER, retry_at_ms=now, now_ms=now)
    )
    assert await hours(store) == await hours_from_calls(store)
    ordered = sorted(taken)
    edges = [ids.lower_bound(start + h * HOUR_MS) for h in range(10)]
    edges += [ids.upper_bound(start + h * HOUR_MS - 1) for h in range(1, 10)]

    def bound() -> int:
        x = rng.random()
        if x < 0.3:
            return rng.choice(ordered)
        if x < 0.6:
            return rng.choice(edges)
        return ids.lower_bound(start + rng.randrange(-HOUR_MS, span + HOUR_MS))

    windows = [(edges[0], edges[-1]), (0, 2**63 - 1), (edges[3], edges[2])]
    windows += [tuple(sorted((bound(), bound()))) for _ in range(120)]  # type: ignore[misc]
    for lo, hi in windows:
        for account in (acc, other):
            total, _ = await _naive(store, account.id, lo, hi, 0, 0)
            async with store.db.read() as conn:
                assert (
                    await store.calls.count_done(conn, account_id=account.id, id_from=lo, id_to=hi)
                    == total
                ), (lo, hi)
            for offset in {0, rng.randrange(total + 3), max(0, total - 2), total}:
                limit = rng.choice([1, 5, 25, 100])
                _, expected = await _naive(store, account.id, lo, hi, offset, limit)
                async with store.db.read() as conn:
                    page = await store.calls.page_done(
                        conn,
                        account_id=account.id,
                        id_from=lo,
                        id_to=hi,
                        offset=offset,
                        limit=limit,
                    )
                assert [r.id for r in page] == expected, (lo, hi, offset, limit)
                assert all(r.state is CallState.DONE for r in page)


def test_hour_of_ids_and_non_ids() -> None:
    at = 1_767_225_600_000 + 5 * HOUR_MS + 59 * 60_000 + 59_999  # 2026-01-01 05:59:59.999Z
    assert hour_of(ids.compose(at, 9_999_999)) == at // HOUR_MS
    assert hour_of(ids.compose(at + 1, 0)) == at // HOUR_MS + 1
    assert hour_of(0) is None
    assert hour_of(-1) is None
    assert hour_of(2**63 - 1) is None  # "92" "23" ...: month 23
    assert hour_of(10**19) is None
