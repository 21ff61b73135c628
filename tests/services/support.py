"""Rows written straight into the tables, so query services are tested on exact states, and
messages leased through the service for the messaging tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain import ids
from simgate.domain.messages import State
from simgate.runtime import Runtime
from simgate.store import Store
from simgate.store.tables import inbound, messages

from ..store.util import OWNER, account, queue

T0 = 1_767_225_600_000  # FakeClock's start: 2026-01-01T00:00:00Z


def message_row(*, at_ms: int, seq: int, **kw: Any) -> dict[str, Any]:
    """A ``messages`` row accepted at ``at_ms`` (its id is time-ordered, domain/ids.py)."""
    row: dict[str, Any] = {
        "id": ids.compose(at_ms, seq),
        "account_id": 1,
        "app_id": None,
        "dialect": "dinstar",
        "client_ref": None,
        "task_id": None,
        "sender": "",
        "recipient": "10086",
        "text": "hello",
        "encoding": 0,
        "parts": 1,
        "port_hint": None,
        "line": "sim",
        "port": 0,
        "state": State.QUEUED,
        "attempts": 0,
        "next_attempt_ms": at_ms,
        "validity_until_ms": at_ms + 86_400_000,
        "report_requested": True,
        "price_micros": 10_000,
        "charge_micros": 10_000,
        "currency": "USD",
        "parts_ok": 0,
        "parts_reported": 0,
        "accepted_ms": at_ms,
        "updated_ms": at_ms,
    }
    row.update(kw)
    row["state"] = int(row["state"])
    return row


def inbound_row(*, at_ms: int, seq: int, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": ids.compose(at_ms, seq),
        "account_id": 1,
        "line": "sim",
        "port": 0,
        "sender": "10086",
        "recipient": "",
        "text": "hi",
        "smsc": "",
        "imsi": "",
        "parts": 1,
        "received_ms": at_ms,
        "read": False,
    }
    row.update(kw)
    return row


async def write_rows(
    store: Store,
    *,
    message_rows: list[dict[str, Any]] | None = None,
    inbound_rows: list[dict[str, Any]] | None = None,
) -> None:
    async def job(conn: AsyncConnection) -> None:
        for row in message_rows or []:
            await conn.execute(insert(messages).values(**row))
        for row in inbound_rows or []:
            await conn.execute(insert(inbound).values(**row))

    await store.db.write(job)


async def leased(runtime: Runtime, n: int = 1, *, parts: int = 1) -> list[int]:
    """``n`` messages queued, charged and leased by OWNER (SUBMITTING)."""
    services = runtime.services
    assert services is not None
    acc = await account(services)
    ids = await queue(runtime, acc, n, parts=parts)
    now = services.clock.now_ms()
    got = await services.messaging.lease(
        lines=["sim"], owner=OWNER, now_ms=now, lease_until_ms=now + 30_000, limit=100
    )
    assert sorted(m.id for m in got) == sorted(ids)
    return ids
