"""Helpers for the store contract tests: accounts and messages written straight to the store."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.accounts import Account
from simgate.domain.messages import Event
from simgate.domain.queue import Leased, PartReport, SubmitRecord
from simgate.domain.records import MessageRecord
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.store import Store
from simgate.store.tables import kv, messages, orphan_reports
from tests.support import new_messages
from tests.support.new_messages import new_message

OWNER = "worker-a"
PRICE = new_messages.PRICE  # micros per part, as queue's rows are priced


async def account(services: Services, name: str = "acme", balance: str = "10") -> Account:
    return await services.accounts.create_account(name=name, balance=balance)


async def balance(services: Services, acc: Account) -> int:
    return (await services.accounts.get_account(acc.id)).balance_micros


async def queue(
    runtime: Runtime,
    acc: Account,
    n: int = 1,
    *,
    parts: int = 1,
    line: str = "sim",
    validity_s: int = 3600,
    charge: bool = True,
    **extra: Any,
) -> list[int]:
    """Insert ``n`` QUEUED messages (charged like the send service does) and return their ids."""
    store = runtime.store
    now = runtime.clock.now_ms()
    ids = await store.new_ids(n, now)
    rows = [
        new_message(
            mid,
            acc.id,
            **{
                "client_ref": f"ref{i}",
                "parts": parts,
                "line": line,
                "validity_until_ms": now + validity_s * 1000,
                **extra,
            },
        )
        for i, mid in enumerate(ids)
    ]

    async def job(conn: Any) -> None:
        if charge:
            assert await store.accounts.charge(conn, acc.id, sum(r.parts * PRICE for r in rows))
        await store.messages.insert(conn, rows, now)

    await store.db.write(job)
    return ids


async def lease(
    store: Store,
    now_ms: int,
    *,
    lines: Sequence[str] = ("sim",),
    owner: str = OWNER,
    limit: int = 100,
    lease_ms: int = 30_000,
) -> list[Leased]:
    return await store.db.write(
        functools.partial(
            store.messages.lease,
            lines=lines,
            owner=owner,
            now_ms=now_ms,
            lease_until_ms=now_ms + lease_ms,
            limit=limit,
        )
    )


async def record(
    services: Services, records: Sequence[SubmitRecord], now_ms: int, *, owner: str = OWNER
) -> None:
    await services.messaging.record_submits(records, owner=owner, now_ms=now_ms)


def ok(mid: int, parts: int = 1, *, line: str = "sim", port: int = 0) -> SubmitRecord:
    return SubmitRecord(
        mid,
        Event.SUBMIT_OK,
        port=port,
        part_refs=tuple(f"{mid}.{i}" for i in range(parts)),
        first_ref=7,
        line=line,
    )


async def report(
    services: Services, reports: Sequence[tuple[str, int]], now_ms: int, *, line: str = "sim"
) -> int:
    parts = [
        PartReport(line=line, line_ref=ref, status_code=code, done_ms=now_ms)
        for ref, code in reports
    ]
    return await services.messaging.record_reports(parts, now_ms=now_ms)


async def get(store: Store, mid: int) -> MessageRecord:
    async with store.db.read() as conn:
        (row,) = await store.messages.get(conn, [mid])
    return row


async def lease_of(store: Store, mid: int) -> tuple[str | None, int | None]:
    """(lease_owner, lease_until_ms) straight from the row: records do not carry them."""
    async with store.db.read() as conn:
        row = (
            await conn.execute(
                select(messages.c.lease_owner, messages.c.lease_until_ms).where(
                    messages.c.id == mid
                )
            )
        ).one()
    return row.lease_owner, row.lease_until_ms


async def orphans(store: Store) -> int:
    async with store.db.read() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(orphan_reports))).scalar_one()
        )


def put_kv(key: str, value: str) -> Any:
    """A write job: one row into ``kv``; returns ``key``."""

    async def job(conn: AsyncConnection) -> str:
        await conn.execute(insert(kv).values(key=key, value=value))
        return key

    return job


async def kv_keys(store: Store) -> set[str]:
    async with store.db.read() as conn:
        return {r.key for r in await conn.execute(select(kv.c.key))}
