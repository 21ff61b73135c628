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

from simgate.domain.accounts import Account, AppKind
from simgate.domain.calls import CallKind, CallOptions, NewCall, Pricing
from simgate.domain.pushes import AttemptResult
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
