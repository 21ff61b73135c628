"""Voice calls: accept, the lease-based queue and the results (spec §1.11-§1.16).

The database is the queue, as for messages: a call is inserted QUEUED; a worker claims due
rows by moving them to CALLING with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
SQLite's write transaction is already exclusive) and writes the result. Every UPDATE is
guarded by "still CALLING under this owner", so a worker that lost its lease changes nothing.

Row operations only: the call service (:mod:`simgate.services.calls`) records what ended.
A call is charged when it ends (the price depends on the talk time) with an unconditional
debit: the call already happened. A lease that expires mid-call is reaped as DONE with SIP 500
and no charge, never dialled again (spec §7, like an UNKNOWN message).

Reads (records by id, ``recordGroupQuery`` pages over ``call_hours``) are in
:mod:`simgate.store.call_records`; ending a call counts it there in the same transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.billing import voice_charge
from simgate.domain.calls import (
    SIP_SERVER_ERROR,
    CallFinal,
    CallResult,
    CallState,
    LeasedCall,
    NewCall,
    Pricing,
    sip_reason,
)
from simgate.store.accounts import AccountRepo
from simgate.store.call_records import CallRecordReader
from simgate.store.sqltext import chunks, positional_insert
from simgate.store.voice_tables import calls

__all__ = ["CallRepo"]

QUEUED, CALLING, DONE = int(CallState.QUEUED), int(CallState.CALLING), int(CallState.DONE)
# Column widths (voice_tables.calls): longer line texts are cut rather than refused.
REASON_MAX = 255
DTMF_MAX = 32

_CALLS_TABLE = calls.name  # (``insert`` takes a parameter named ``calls``)
_INSERT_COLUMNS = (
    "id",
    "account_id",
    "app_id",
    "kind",
    "state",
    "callee",
    "display_num",
    "area",
    "audio_id",
    "file_id",
    "loop_count",
    "called_info",
    "max_duration_s",
    "max_ringing_s",
    "recall_count",
    "recall_interval_s",
    "recalls_done",
    "next_attempt_ms",
    "submit_ms",
    "call_duration_s",
    "charged_duration_s",
    "dtmf",
    "bill_period",
    "rate_micros",
    "base_cost_micros",
    "cost_micros",
    "currency",
    "quote_exchange_micros",
    "updated_ms",
)

_LEASED_COLUMNS = (
    calls.c.id,
    calls.c.account_id,
    calls.c.callee,
    calls.c.display_num,
    calls.c.audio_id,
    calls.c.loop_count,
    calls.c.max_duration_s,
    calls.c.max_ringing_s,
    calls.c.recall_count,
    calls.c.recall_interval_s,
    calls.c.recalls_done,
    calls.c.rate_micros,
    calls.c.bill_period,
    calls.c.currency,
    calls.c.quote_exchange_micros,
    calls.c.line,
    calls.c.next_attempt_ms,
)


def _leased_of(row: Any) -> LeasedCall:
    (cid, acc, callee, display, audio, loops, max_dur, max_ring, recalls, interval, done) = row[:11]
    rate, period, currency, quote, line = row[11:16]
    return LeasedCall(
        id=cid,
        account_id=acc,
        callee=callee,
        display_num=display,
        audio_id=audio,
        loop_count=loops,
        max_duration_s=max_dur,
        max_ringing_s=max_ring,
        recall_count=recalls,
        recall_interval_s=interval,
        recalls_done=done,
        pricing=Pricing(rate, period, currency, quote),
        line=line,
    )


# The fields one attempt's CallResult sets, as bound per row (finish and redial share them).
_RESULT_VALUES: dict[str, Any] = {
    "line": bindparam("b_line"),
    "call_ms": bindparam("b_call"),
    "ringing_ms": bindparam("b_ringing"),
    "answer_ms": bindparam("b_answer"),
    "hangup_ms": bindparam("b_hangup"),
    "sip_code": bindparam("b_sip"),
    "reason": bindparam("b_reason"),
    "dtmf": bindparam("b_dtmf"),
    "call_duration_s": bindparam("b_duration"),
}


def _result_params(r: CallResult) -> dict[str, Any]:
    return {
        "b_id": r.call_id,
        "b_line": r.line,
        "b_call": r.call_ms,
        "b_ringing": r.ringing_ms,
        "b_answer": r.answer_ms,
        "b_hangup": r.hangup_ms,
        "b_sip": r.sip_code,
        "b_reason": r.reason[:REASON_MAX],
        "b_dtmf": r.dtmf[:DTMF_MAX],
        "b_duration": r.duration_s,
    }


class CallRepo(CallRecordReader):
    # ---- accept ----------------------------------------------------------------------
    async def insert(self, conn: AsyncConnection, calls: Sequence[NewCall]) -> None:
        """Queue new calls (QUEUED, due at once). Tuples straight to the driver's executemany."""
        if not calls:
            return
        params = [
            (
                c.id,
                c.account_id,
                c.app_id,
                int(c.kind),
                QUEUED,
                c.callee,
                c.options.display_num,
                c.area,
                c.audio_id,
                c.file_id,
                c.options.loop_count,
                c.options.called_info,
                c.options.max_duration_s,
                c.options.max_ringing_s,
                c.options.recall_count,
                c.options.recall_interval_s,
                0,
                c.submit_ms,
                c.submit_ms,
                0,
                0,
                "",
                c.pricing.bill_period,
                c.pricing.rate_micros,
                0,
                0,
                c.pricing.currency,
                c.pricing.quote_exchange_micros,
                c.submit_ms,
            )
            for c in calls
        ]
        sql = positional_insert(conn.dialect, _CALLS_TABLE, _INSERT_COLUMNS)
        await conn.exec_driver_sql(sql, params)

    # ---- the queue -------------------------------------------------------------------
    async def lease(
        self, conn: AsyncConnection, *, owner: str, now_ms: int, lease_until_ms: int, limit: int
    ) -> list[LeasedCall]:
        """Claim up to ``limit`` due QUEUED calls, oldest due first (they become CALLING)."""
        if limit <= 0:
            return []
        due = (
            select(calls.c.id)
            .where(calls.c.state == QUEUED, calls.c.next_attempt_ms <= now_ms)
            .order_by(calls.c.next_attempt_ms, calls.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            # Materialised, so the locking SELECT runs once (see MessageRepo.lease).
            cte = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
            picked: Any = calls.c.id.in_(select(cte.c.id))
        else:
            picked = calls.c.id.in_(due.scalar_subquery())
        result = await conn.execute(
            update(calls)
            .where(picked, calls.c.state == QUEUED)
            .values(
                state=CALLING,
                lease_owner=owner,
                lease_until_ms=lease_until_ms,
                updated_ms=now_ms,
            )
            .returning(*_LEASED_COLUMNS)
        )
        rows = sorted(result, key=lambda r: (r.next_attempt_ms, r.id))
        return [_leased_of(r) for r in rows]

    async def _held(
        self, conn: AsyncConnection, ids_: Sequence[int], *, owner: str
    ) -> dict[int, int]:
        """{id: account_id} of the calls still CALLING under ``owner``, locked on PostgreSQL
        until the transaction ends (so the guarded UPDATE that follows surely applies)."""
        held: dict[int, int] = {}
        for chunk in chunks(sorted(set(ids_)), 500):
            rows = await conn.execute(
                select(calls.c.id, calls.c.account_id)
                .where(
                    calls.c.id.in_(chunk),
                    calls.c.state == CALLING,
                    calls.c.lease_owner == owner,
                )
                .order_by(calls.c.id)
                .with_for_update()
            )
            held.update((r.id, r.account_id) for r in rows)
        return held

    async def finish(
        self, conn: AsyncConnection, *, finals: Sequence[CallFinal], owner: str, now_ms: int
    ) -> list[int]:
        """Record final results and charge them; returns the ids that changed (held ones)."""
        held = await self._held(conn, [f.result.call_id for f in finals], owner=owner)
        todo: dict[int, CallFinal] = {}
        for f in finals:
            if f.result.call_id in held:
                todo.setdefault(f.result.call_id, f)
        if not todo:
            return []
        params = []
        for f in todo.values():
            r, ch = f.result, f.charge
            params.append(
                {
                    **_result_params(r),
                    "b_charged": ch.charged_duration_s,
                    "b_rate": ch.rate_micros,
                    "b_base": ch.base_cost_micros,
                    "b_cost": ch.cost_micros,
                    "b_currency": ch.currency,
                    "b_quote": ch.quote_exchange_micros,
                    "b_settle_rate": ch.settle_rate_micros,
                    "b_settle_pay": ch.settle_pay_micros,
                }
            )
        c = calls.c
        await conn.execute(
            update(calls)
            .where(c.id == bindparam("b_id"), c.state == CALLING, c.lease_owner == owner)
            .values(
                state=DONE,
                lease_owner=None,
                lease_until_ms=None,
                updated_ms=now_ms,
                **_RESULT_VALUES,
                charged_duration_s=bindparam("b_charged"),
                rate_micros=bindparam("b_rate"),
                base_cost_micros=bindparam("b_base"),
                cost_micros=bindparam("b_cost"),
                currency=bindparam("b_currency"),
                quote_exchange_micros=bindparam("b_quote"),
                settle_rate_micros=bindparam("b_settle_rate"),
                settle_pay_micros=bindparam("b_settle_pay"),
            ),
            params,
        )
        debits: Counter[int] = Counter()
        for cid, f in todo.items():
            debits[held[cid]] += f.charge.debit_micros
        for account_id in sorted(debits):
            await AccountRepo.debit(conn, account_id, debits[account_id])
        done = list(todo)
        await self.count_hours(conn, [(held[cid], cid) for cid in done])
        return done

    async def redial(
        self,
        conn: AsyncConnection,
        *,
        result: CallResult,
        owner: str,
        next_attempt_ms: int,
        now_ms: int,
    ) -> bool:
        """An unanswered attempt with recalls left: keep its result (a record shows the
        latest attempt), count it, and queue the call again. No event, no charge (§1.11:
        only the last attempt's result is pushed)."""
        c = calls.c
        out = await conn.execute(
            update(calls)
            .where(c.id == bindparam("b_id"), c.state == CALLING, c.lease_owner == owner)
            .values(
                state=QUEUED,
                next_attempt_ms=next_attempt_ms,
                lease_owner=None,
                lease_until_ms=None,
                recalls_done=c.recalls_done + 1,
                updated_ms=now_ms,
                **_RESULT_VALUES,
            ),
            _result_params(result),
        )
        return bool(out.rowcount)

    async def release(
        self,
        conn: AsyncConnection,
        *,
        ids: Sequence[int],
        owner: str,
        retry_at_ms: int,
        now_ms: int,
    ) -> int:
        """Leased calls the worker could not start (no line room): queued again, uncounted."""
        n = 0
        for chunk in chunks(sorted(set(ids)), 500):
            out = await conn.execute(
                update(calls)
                .where(
                    calls.c.id.in_(chunk),
                    calls.c.state == CALLING,
                    calls.c.lease_owner == owner,
                )
                .values(
                    state=QUEUED,
                    next_attempt_ms=retry_at_ms,
                    lease_owner=None,
                    lease_until_ms=None,
                    updated_ms=now_ms,
                )
            )
            n += out.rowcount
        return n

    async def renew(
        self,
        conn: AsyncConnection,
        *,
        ids: Sequence[int],
        owner: str,
        lease_until_ms: int,
        now_ms: int,
    ) -> int:
        """Extend the leases of calls in progress (a live worker's heartbeat): a crashed
        worker's calls are then reaped one short lease after the crash, not a whole call late."""
        n = 0
        for chunk in chunks(sorted(set(ids)), 500):
            out = await conn.execute(
                update(calls)
                .where(
                    calls.c.id.in_(chunk),
                    calls.c.state == CALLING,
                    calls.c.lease_owner == owner,
                )
                .values(lease_until_ms=lease_until_ms, updated_ms=now_ms)
            )
            n += out.rowcount
        return n

    async def reap(self, conn: AsyncConnection, *, now_ms: int) -> list[int]:
        """CALLING rows whose lease expired (the worker died mid-call) end DONE with SIP 500
        and no charge. Never queued again: the callee may have heard the call (spec §7).
        Returns the ids that ended."""
        q = select(
            calls.c.id,
            calls.c.account_id,
            calls.c.rate_micros,
            calls.c.bill_period,
            calls.c.currency,
            calls.c.quote_exchange_micros,
        ).where(calls.c.state == CALLING, calls.c.lease_until_ms < now_ms)
        # A row a live worker is finishing right now is locked: leave it to that worker.
        rows = (await conn.execute(q.order_by(calls.c.id).with_for_update(skip_locked=True))).all()
        if not rows:
            return []
        params = []
        for r in rows:
            ch = voice_charge(
                answered=False,
                duration_s=0,
                rate_micros=r.rate_micros,
                bill_period=r.bill_period,
                currency=r.currency,
                quote_exchange_micros=r.quote_exchange_micros,
            )
            params.append(
                {
                    "b_id": r.id,
                    "b_base": ch.base_cost_micros,
                    "b_cost": ch.cost_micros,
                    "b_settle_rate": ch.settle_rate_micros,
                    "b_settle_pay": ch.settle_pay_micros,
                }
            )
        c = calls.c
        await conn.execute(
            update(calls)
            .where(c.id == bindparam("b_id"), c.state == CALLING)
            .values(
                state=DONE,
                lease_owner=None,
                lease_until_ms=None,
                hangup_ms=now_ms,
                sip_code=SIP_SERVER_ERROR,
                reason=sip_reason(SIP_SERVER_ERROR),
                call_duration_s=0,
                charged_duration_s=0,
                base_cost_micros=bindparam("b_base"),
                cost_micros=bindparam("b_cost"),
                settle_rate_micros=bindparam("b_settle_rate"),
                settle_pay_micros=bindparam("b_settle_pay"),
                updated_ms=now_ms,
            ),
            params,
        )
        await self.count_hours(conn, [(r.account_id, r.id) for r in rows])
        return [r.id for r in rows]

    async def queue_depth(self, conn: AsyncConnection) -> int:
        """Calls not finished yet (QUEUED or CALLING), for metrics."""
        q = select(func.count()).select_from(calls).where(calls.c.state.in_([QUEUED, CALLING]))
        return int((await conn.execute(q)).scalar_one())
