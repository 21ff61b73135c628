"""Fixtures for the OpenVox dialect: an app over a real store, a gateway user, a client,
and the helpers the box tests share (send, wait for states)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from simgate.domain.accounts import Account
from simgate.domain.messages import State
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.testing.clock import FakeClock
from tests.conftest import make_settings
from tests.support.pg import truncate_pg

USER = "gw"
PASSWORD = "secret-pass"


@dataclass
class OV:
    rt: Runtime
    sv: Services
    client: httpx.AsyncClient
    account: Account
    clock: FakeClock

    async def post(self, uri: str, body: Any = None, *, auth: bool = True) -> dict[str, Any]:
        """POST JSON with the gateway credentials; checks the envelope and returns it."""
        payload = dict(body or {})
        if auth:
            payload.setdefault("username", USER)
            payload.setdefault("password", PASSWORD)
        resp = await self.client.post(uri, json=payload)
        return envelope(resp, uri)

    async def raw(self, uri: str, content: bytes, method: str = "POST") -> dict[str, Any]:
        resp = await self.client.request(method, uri, content=content)
        return envelope(resp, uri)


# The box pages' extra top-level keys (spec Amendments); every other answer has none.
PAGING = {"total", "current_page", "pages"}


def envelope(resp: httpx.Response, uri: str) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text  # §7: never an HTTP-level error
    doc = resp.json()
    assert set(doc) - PAGING == {"uri", "code", "msg", "data"}
    assert set(doc) & PAGING in (set(), PAGING)
    assert all(isinstance(doc[k], int) for k in set(doc) & PAGING)
    assert doc["uri"] == uri
    assert isinstance(doc["code"], int)
    assert isinstance(doc["msg"], str)
    assert isinstance(doc["data"], list)
    return doc  # type: ignore[no-any-return]


async def open_ov(
    backend: str, tmp_path: Path, clock: FakeClock, **extra: Any
) -> tuple[Runtime, OV]:
    if backend.startswith("postgresql"):
        await truncate_pg(backend)
    rt = Runtime(make_settings(tmp_path, backend, **extra), role="admin", clock=clock)
    sv = await rt.open()
    account = await sv.accounts.create_account(name="acme", balance="100")
    await sv.accounts.create_user(account.id, username=USER, password=PASSWORD)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=rt.app()), base_url="http://t")
    return rt, OV(rt, sv, client, account, clock)


@pytest.fixture
async def ov(backend: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[OV]:
    rt, handle = await open_ov(backend, tmp_path, clock)
    try:
        yield handle
    finally:
        await handle.client.aclose()
        await rt.close()


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"86138{i:08d}" for i in range(start, start + n)]


async def send(ov: OV, nums: list[str], text: str = "hello") -> list[str]:
    doc = await ov.post("/sms/send", {"dest_num": ",".join(nums), "msg": text})
    assert doc["code"] == 200
    return [i["id"] for i in doc["data"]]


async def settle(ov: OV, ids: list[str], done: set[State]) -> dict[int, Any]:
    for _ in range(500):
        async with ov.rt.store.db.read() as conn:
            rows = await ov.rt.store.messages.get(conn, [int(i) for i in ids])
        if len(rows) == len(ids) and all(r.state in done for r in rows):
            return {r.id: r for r in rows}
        await ov.clock.advance(0.05)
        await asyncio.sleep(0.002)
    raise AssertionError([r.state.name for r in rows])
