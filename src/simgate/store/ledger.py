"""The account ledger: every operator movement of an account's money, and the rebuild.

Row operations only: the account service (:mod:`simgate.services.accounts`) moves the money
and writes the entry in one unit of work. Message charges (``messages.charge_micros``, zero
once refunded) and call debits (``calls``) are not ledger rows: they are kept on their own
rows, and :meth:`LedgerRepo.rebuilt_micros` adds them up with the ledger.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.accounts import LedgerEntry, LedgerKind
from simgate.store.tables import account_ledger, messages
from simgate.store.voice_tables import calls


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(
        id=row.id,
        account_id=row.account_id,
        at_ms=row.at_ms,
        kind=LedgerKind(row.kind),
        amount_micros=row.amount_micros,
        balance_after_micros=row.balance_after_micros,
        gift_after_micros=row.gift_after_micros,
        by=row.made_by,
        reason=row.reason,
    )


class LedgerRepo:
    async def add(
        self,
        conn: AsyncConnection,
        *,
        account_id: int,
        kind: LedgerKind,
        amount_micros: int,
        balance_after_micros: int,
        gift_after_micros: int,
        by: str,
        reason: str,
        now_ms: int,
    ) -> LedgerEntry:
        row = (
            await conn.execute(
                insert(account_ledger)
                .values(
                    account_id=account_id,
                    at_ms=now_ms,
                    kind=kind.value,
                    amount_micros=amount_micros,
                    balance_after_micros=balance_after_micros,
                    gift_after_micros=gift_after_micros,
                    made_by=by,
                    reason=reason,
                )
                .returning(*account_ledger.c)
            )
        ).one()
        return _entry(row)

    async def entries(self, conn: AsyncConnection, account_id: int) -> list[LedgerEntry]:
        """The account's entries, oldest first."""
        rows = await conn.execute(
            select(account_ledger)
            .where(account_ledger.c.account_id == account_id)
            .order_by(account_ledger.c.id)
        )
        return [_entry(r) for r in rows]

    async def rebuilt_micros(self, conn: AsyncConnection, account_id: int) -> int:
        """Balance + gift as the records say it must be: the ledger's movements, less what
        messages still hold charged (a refund zeroes a message's charge) and calls debited."""
        moved = await conn.execute(
            select(func.coalesce(func.sum(account_ledger.c.amount_micros), 0)).where(
                account_ledger.c.account_id == account_id
            )
        )
        charged = await conn.execute(
            select(func.coalesce(func.sum(messages.c.charge_micros), 0)).where(
                messages.c.account_id == account_id
            )
        )
        debit = func.coalesce(calls.c.settle_pay_micros, calls.c.cost_micros)
        debited = await conn.execute(
            select(func.coalesce(func.sum(debit), 0)).where(calls.c.account_id == account_id)
        )
        return int(moved.scalar_one()) - int(charged.scalar_one()) - int(debited.scalar_one())
