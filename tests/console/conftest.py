"""Fixtures for the console: a runtime on a migrated SQLite copy, two accounts, console users
of every kind, and a logged-in client per user."""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.accounts import Account, AppKind
from simgate.domain.calls import CallKind, CallOptions, NewCall, Pricing
from simgate.domain.events import InboundStored
from simgate.domain.pushes import AttemptResult, Outcome
from simgate.domain.records import InboundRecord
from simgate.push.base import PlannedPush, PushRequest
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.services.pushes import insert_planned
from simgate.testing.clock import FakeClock
from tests.conftest import make_settings

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Site:
    rt: Runtime
    services: Services
    clock: FakeClock
    web: FastAPI
    acme: Account
    other: Account

    def client(self, base_url: str = "http://t") -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.web), base_url=base_url)

    async def login(self, username: str, password: str = PASSWORD) -> Browser:
        c = self.client()
        page = await c.get("/console/login")
        token = CSRF.search(page.text)
        assert token is not None
        r = await c.post(
            "/console/login",
            data={"username": username, "password": password, "csrf": token.group(1)},
        )
        assert r.status_code == 303, r.text
        return Browser(c)


@dataclass
class Browser:
    """A logged-in client that reads each page's CSRF token like a browser submits it."""

    c: httpx.AsyncClient

    async def get(self, path: str, **kw: object) -> httpx.Response:
        return await self.c.get(path, **kw)  # type: ignore[arg-type]

    async def csrf(self) -> str:
        page = await self.c.get("/console/accounts")
        found = CSRF.search(page.text)
        assert found is not None, page.text
        return found.group(1)

    async def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: str | None = None
    ) -> httpx.Response:
        form = dict(data or {})
        form["csrf"] = await self.csrf() if csrf is None else csrf
        return await self.c.post(path, data=form)

    async def aclose(self) -> None:
        await self.c.aclose()


@pytest.fixture
async def site(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Site]:
    clock = FakeClock()
    rt = Runtime(make_settings(tmp_path, sqlite_url), role="run", clock=clock)
    await rt.open()
    sv = rt.services
    assert sv is not None
    acme = await sv.accounts.create_account(name="acme", balance="100")
    other = await sv.accounts.create_account(name="other", balance="50")
    for account in (acme, other):
        await sv.accounts.create_app(account.id, kind=AppKind.SMS, name=f"{account.name} sms")
        await sv.accounts.create_key(account.id)
    auth = sv.console_auth
    await auth.create_user(username="root", password=PASSWORD, role="admin")
    await auth.create_user(username="watcher", password=PASSWORD, role="viewer")
    await auth.create_user(username="acme-admin", password=PASSWORD, account="acme")
    await auth.create_user(username="acme-viewer", password=PASSWORD, role="viewer", account="acme")
    try:
        yield Site(rt, sv, clock, rt.app(dialects=()), acme, other)
    finally:
        await rt.close()


async def make_dead_push(sv: Services, url: str, *, order_key: str | None = None) -> int:
    """A push to ``url`` that the sender dead-lettered (one attempt, HTTP 503)."""
    request = PushRequest("POST", url, {"Content-Type": "application/json"}, b'{"n":1}')
    planned = PlannedPush(request, order_key=order_key, signing_secret=None, kind="test.kind")
    now = sv.clock.now_ms()
    await sv.pushes.db.write(functools.partial(insert_planned, planned=[planned], now_ms=now))
    (claimed,) = await sv.pushes.queue.claim(
        owner="t", now_ms=now, lease_until_ms=now + 60_000, limit=1, window=10, busy={}
    )
    result = AttemptResult(claimed.id, claimed.endpoint, "dead", status=503, error="HTTP 503")
    await sv.pushes.queue.record([result], owner="t", now_ms=now)
    return claimed.id


async def make_call(rt: Runtime, account: Account, app_id: int) -> int:
    store, now = rt.store, rt.clock.now_ms()
    (call_id,) = await store.new_ids(1, now)
    new = NewCall(
        id=call_id,
        account_id=account.id,
        app_id=app_id,
        kind=CallKind.GROUP,
        callee="8613800138000",
        audio_id=1,
        file_id="f.mp3",
        area="",
        options=CallOptions(),
        pricing=Pricing(rate_micros=1, bill_period="20+20", currency="USD",
                        quote_exchange_micros=None),
        submit_ms=now,
    )  # fmt: skip
    await store.db.write(functools.partial(store.calls.insert, calls=[new]))
    return call_id


async def make_incoming(rt: Runtime, account: Account, *, mo_url: str) -> int:
    """An incoming SMS of ``account``, stored and published as the inbound service does, its
    SMS app pushing incoming SMS to ``mo_url``: the itniotech format plans its MO push."""
    sv = rt.services
    assert sv is not None
    (app,) = [a for a in await sv.accounts.list_apps(account.id) if a.kind is AppKind.SMS]
    await sv.accounts.update_app_push(app.app_id, {"mo_url": mo_url})
    now = rt.clock.now_ms()
    (inbound_id,) = await rt.store.new_ids(1, now)
    record = InboundRecord(
        id=inbound_id, account_id=account.id, line="sim", port=2, sender="8613700000001",
        recipient="10690000", text="hello there", smsc="", imsi="", parts=1,
        received_ms=now, read=False,
    )  # fmt: skip

    async def job(conn: AsyncConnection) -> None:
        await rt.store.inbound.insert(conn, [record])
        await rt.changes.publish(conn, [InboundStored(inbound_id, now)])

    await rt.store.db.write(job)
    return inbound_id


async def attempt_push(
    sv: Services, push_id: int, *results: tuple[Outcome, int | None, str | None]
) -> None:
    """Attempts of push ``push_id`` as the sender records them: (outcome, status, error).
    Each claims every pushes that is pending (make it the only one)."""
    for outcome, status, error in results:
        now = sv.clock.now_ms()
        claimed = await sv.pushes.queue.claim(
            owner="t", now_ms=now + 10**9, lease_until_ms=now + 10**9 + 60_000, limit=100,
            window=100, busy={},
        )  # fmt: skip
        (mine,) = [c for c in claimed if c.id == push_id]
        result = AttemptResult(
            mine.id, mine.endpoint, outcome, status=status, error=error,
            next_attempt_ms=now + 1000,
        )  # fmt: skip
        await sv.pushes.queue.record([result], owner="t", now_ms=now)
        await sv.clock.advance(1)  # type: ignore[attr-defined]
