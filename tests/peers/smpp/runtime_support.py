"""Drive a real Runtime (store + dispatcher + SMPP line) against an SMPP peer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from simgate.domain.accounts import Account
from simgate.domain.messages import State
from simgate.domain.records import MessageRecord
from simgate.errors import NotFound
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.services.sending import Recipient, SendRequest
from simgate.store import Store
from tests.conftest import make_settings

FINAL = {State.DELIVERED, State.FAILED, State.REJECTED, State.EXPIRED, State.UNKNOWN}


def smpp_line(port: int, **kw: Any) -> dict[str, Any]:
    return {
        "driver": "smpp",
        "port": port,
        "system_id": "simgate",
        "password": "secret",
        "response_timeout": 1.0,
        "reconnect_min": 0.05,
        "reconnect_max": 0.3,
        "throttle_pause": 0.1,
        "bind_wait": 3.0,
        "receipt_hold": 0.5,
        **kw,
    }


@asynccontextmanager
async def smpp_runtime(
    tmp_path: Path, url: str, line: dict[str, Any], *, account: str = "acme", **worker: Any
) -> AsyncIterator[tuple[Runtime, Services, Account]]:
    settings = make_settings(
        tmp_path,
        url,
        lines={"smsc": line},
        routes=[{"prefix": "", "lines": ["smsc"]}],
        worker={
            "idle_poll_seconds": 0.01,
            "retry_base_seconds": 0.1,
            "retry_max_seconds": 0.3,
            "max_attempts": 30,
            **worker,
        },
    )
    rt = Runtime(settings, role="worker")  # the system clock: real sockets, real timeouts
    services = await rt.open()
    try:
        try:  # a runtime opened again on the same database (a restart) finds it
            found = await services.accounts.get_account(account)
        except NotFound:
            found = await services.accounts.create_account(name=account, balance="1000")
        yield rt, services, found
    finally:
        await rt.close()


async def send(
    services: Services, account: Account, numbers: Sequence[str], text: str, **kw: Any
) -> list[int]:
    outcome = await services.sending.send(
        SendRequest(
            account=account,
            dialect="test",
            text=text,
            recipients=[Recipient(n) for n in numbers],
            report_requested=True,
            **kw,
        )
    )
    return [a.message_id for a in outcome.accepted]


async def settle(
    store: Store, ids: Sequence[int], states: set[State] = FINAL, within: float = 20
) -> list[MessageRecord]:
    """Wait (bounded) until every message is in one of ``states``; returns the rows."""
    rows: list[MessageRecord] = []
    for _ in range(int(within / 0.05)):
        async with store.db.read() as conn:
            rows = await store.messages.get(conn, list(ids))
        if len(rows) == len(ids) and all(r.state in states for r in rows):
            return rows
        await asyncio.sleep(0.05)
    return rows


def numbers(n: int, base: int = 8613800100000) -> list[str]:
    return [str(base + i) for i in range(n)]
