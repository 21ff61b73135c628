"""kill -9 while concurrent sends are being group-committed (issue 15): a 2xx means committed.

``simgate serve`` takes single-number itniotech sendSms requests from 16 clients at once, so
the accept writer and the replay-claim writer commit them in batches, and is SIGKILLed while
requests are in flight, three times. Every message whose id a client got back must be in the
database, with its replay answer (committed in the same transaction), and the account must
have paid exactly for the messages stored: nothing half-written survives a kill. The same
holds with ``commit = "os"`` (SQLite synchronous=NORMAL, PostgreSQL synchronous_commit=off):
a commit the operating system (or the PostgreSQL server) has is not lost by killing simgate.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from simgate.domain.accounts import AppKind
from simgate.settings import load_settings
from simgate.store.tables import itnio_replays, messages
from simgate.testing.procs import SimgateProcess, free_port
from tests.process.support import empty_pg, make_account, open_services, simgate_config

pytestmark = pytest.mark.slow

KILLS = 3
CLIENTS = 16
ANSWERS_BEFORE_KILL = 150
BALANCE_MICROS = 1_000_000_000


def _headers(key: str, secret: str) -> dict[str, str]:
    ts = str(int(time.time()))
    return {
        "Content-Type": "application/json;charset=UTF-8",
        "Api-Key": key,
        "Timestamp": ts,
        "Sign": hashlib.md5((key + secret + ts).encode()).hexdigest(),
    }


async def _load(
    url: str, app_id: str, key: str, secret: str, tag: int, acknowledged: dict[int, str]
) -> None:
    """Send until the server dies; record every message id a 2xx answer carried."""

    async def client(c: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            for n in range(10**6):
                content = f"kill {tag}-{c}-{n}"
                body = {"appId": app_id, "numbers": "8613800138000", "content": content}
                try:
                    r = await http.post("/sms/sendSms", json=body, headers=_headers(key, secret))
                except httpx.TransportError:
                    return  # killed
                data: dict[str, Any] = r.json()
                assert r.status_code == 200, r.text
                assert data["status"] == "0", data
                (item,) = data["array"]
                acknowledged[int(item["msgId"])] = content

    await asyncio.gather(*(client(c) for c in range(CLIENTS)))


async def test_sigkill_during_group_commit_loses_no_acknowledged_send(tmp_path: Path) -> None:
    await _kill_three_times(tmp_path, None)


async def test_sigkill_with_commit_os_loses_no_acknowledged_send(tmp_path: Path) -> None:
    """SQLite synchronous=NORMAL: the commit is in the WAL in the page cache, not yet on the
    disk, when the 2xx goes out; a kill of the process does not take it back."""
    await _kill_three_times(tmp_path, None, "os")


@pytest.mark.pg
async def test_sigkill_during_one_statement_accepts_on_postgresql(
    tmp_path: Path, pg_url: str | None
) -> None:
    """On PostgreSQL the sends' batches are one statement each in autocommit (claims,
    charges and rows: store/messages.py insert_claimed), not a transaction."""
    await _kill_three_times(tmp_path, await empty_pg(pg_url))


@pytest.mark.pg
async def test_sigkill_with_commit_os_on_postgresql(tmp_path: Path, pg_url: str | None) -> None:
    """synchronous_commit=off: the server has the commit when the 2xx goes out."""
    await _kill_three_times(tmp_path, await empty_pg(pg_url), "os")


async def _kill_three_times(tmp_path: Path, url: str | None, commit: str = "disk") -> None:
    port = free_port()
    config = simgate_config(
        tmp_path, port, url, billing={"default_sms_price": "0.001"}, commit=commit
    )
    rt = await open_services(load_settings(config))
    assert rt.services is not None
    sv = rt.services
    acknowledged: dict[int, str] = {}
    try:
        account = await make_account(sv, balance=str(BALANCE_MICROS // 1_000_000))
        app = await sv.accounts.create_app(account.id, kind=AppKind.SMS)
        key = await sv.accounts.create_key(account.id)
        for k in range(KILLS):
            with SimgateProcess(
                ["serve"], workdir=tmp_path, config=config, port=port, name=f"k{k}"
            ) as proc:
                await asyncio.to_thread(proc.wait_healthy, 60)
                before = len(acknowledged)
                load = asyncio.ensure_future(
                    _load(proc.url, app.app_id, key.key, key.secret, k, acknowledged)
                )
                deadline = time.monotonic() + 60
                while len(acknowledged) - before < ANSWERS_BEFORE_KILL:
                    assert not load.done(), load.exception()
                    assert time.monotonic() < deadline, "the server answered too few sends"
                    await asyncio.sleep(0.01)
                assert proc.kill() == -signal.SIGKILL  # requests in flight
                await asyncio.wait_for(load, 30)
        async with rt.store.db.read() as conn:
            stored = dict(
                (
                    (mid, text)
                    for mid, text in await conn.execute(select(messages.c.id, messages.c.text))
                )
            )
            charged = (
                await conn.execute(select(func.coalesce(func.sum(messages.c.charge_micros), 0)))
            ).scalar_one()
            answered = (
                await conn.execute(
                    select(func.count())
                    .select_from(itnio_replays)
                    .where(itnio_replays.c.response.is_not(None))
                )
            ).scalar_one()
        lost = {mid for mid in acknowledged if stored.get(mid) != acknowledged[mid]}
        assert not lost, f"acknowledged, not stored: {sorted(lost)[:10]}"
        balance = (await sv.accounts.get_account(account.id)).balance_micros
        assert BALANCE_MICROS - balance == charged == 1_000 * len(stored)
        # Each stored send committed its replay answer with it (issue 14 item 14).
        assert answered == len(stored)
    finally:
        await rt.close()
