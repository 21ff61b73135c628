"""Fixtures for the console: a runtime on a migrated SQLite copy, two accounts, console users
of every kind, and a logged-in client per user."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from simgate.domain.accounts import Account, AppKind
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.testing.clock import FakeClock
from tests.conftest import make_settings

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Site:
    rt: Runtime
    services: Services
    clock: FakeClock
    app: httpx.ASGITransport
    acme: Account
    other: Account

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.app, base_url="http://t")

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
    await auth.create_user(
        username="acme-viewer", password=PASSWORD, role="viewer", account="acme"
    )
    transport = httpx.ASGITransport(app=rt.app(dialects=()))
    try:
        yield Site(rt, sv, clock, transport, acme, other)
    finally:
        await rt.close()
