"""Fixtures for the Dinstar dialect: a runtime with the sim line, a gateway user, clients."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.api.dialects.dinstar import DinstarPush
from simgate.api.dialects.dinstar.settings import PUSH_TYPES, DinstarSettings
from simgate.domain.accounts import Account, GatewayRole
from simgate.domain.events import DomainEvent
from simgate.domain.messages import State
from simgate.lines.sim import SimLine
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.services.events import Notes
from simgate.services.outbox import PushOutbox
from simgate.testing.clock import FakeClock
from tests.conftest import make_settings
from tests.support.pg import truncate_pg

USER, PASSWORD = "admin", "s3cret-pass"
SN = "0000-0000-0000-0001"


@dataclass
class Gw:
    rt: Runtime
    sv: Services
    client: httpx.AsyncClient
    clock: FakeClock
    account: Account

    @property
    def line(self) -> SimLine:
        line = self.sv.lines["sim"]
        assert isinstance(line, SimLine)
        return line

    def anon(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.client._transport, base_url="http://t")

    async def post(self, path: str, body: Any) -> dict[str, Any]:
        r = await self.client.post(path, json=body)
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        r = await self.client.get(path, params=params)
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    async def settle(self, ids: list[int], state: State) -> None:
        """Run the worker's clock until every message is in ``state``."""
        for _ in range(300):
            async with self.rt.store.db.read() as conn:
                rows = await self.rt.store.messages.get(conn, ids)
            if rows and len(rows) == len(ids) and all(r.state is state for r in rows):
                return
            await self.clock.advance(0.1)
            await asyncio.sleep(0.005)
        raise AssertionError(f"not all {state.name}: {[r.state.name for r in rows]}")

    async def message_ids(self) -> list[int]:
        async with self.rt.store.db.read() as conn:
            rows = await self.rt.store.messages.page(conn, account_id=self.account.id, limit=10_000)
        return [r.id for r in rows]


GwFactory = Callable[..., Awaitable[Gw]]


@dataclass(frozen=True)
class SmsResult:
    """A ``query_sms_result`` row / ``sms_result`` push item as typed clients model it: every
    field required, so a row without one fails to build (spec Amendments: ``user_id`` too)."""

    port: int
    user_id: int
    number: str
    time: str
    status: str
    count: int
    succ_count: int
    ref_id: int
    imsi: str


@pytest.fixture
async def make_gw(backend: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[GwFactory]:
    """Build a gateway with extra settings (e.g. ``lines={"sim": {"report_delay_ms": 5000}}``)."""
    opened: list[tuple[Runtime, httpx.AsyncClient]] = []

    async def make(**extra: Any) -> Gw:
        if backend.startswith("postgresql"):
            await truncate_pg(backend)
        rt = Runtime(make_settings(tmp_path, backend, **extra), role="admin", clock=clock)
        sv = await rt.open()
        account = await sv.accounts.create_account(name="acme", balance="100")
        await sv.accounts.create_user(
            account.id, username=USER, password=PASSWORD, role=GatewayRole.OPERATOR
        )
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=rt.app()), base_url="http://t", auth=(USER, PASSWORD)
        )
        opened.append((rt, client))
        return Gw(rt, sv, client, clock, account)

    yield make
    for rt, client in reversed(opened):
        await client.aclose()
        await rt.close()


@pytest.fixture
async def gw(make_gw: GwFactory) -> Gw:
    return await make_gw()


class PushLog:
    """Runs the Dinstar push format inside every write transaction, as the outbox does."""

    def __init__(self, rt: Runtime, sv: Services) -> None:
        cfg = rt.dialect_settings["dinstar"]
        assert isinstance(cfg, DinstarSettings)
        push = DinstarPush(cfg, sv.lines)
        self.outbox = PushOutbox(store=rt.store, formats=[push], clock=sv.clock)
        self.bodies: list[dict[str, Any]] = []

    async def __call__(
        self, conn: AsyncConnection, events: Sequence[DomainEvent], notes: Notes
    ) -> None:
        for p in await self.outbox.plan(conn, events, notes):
            assert p.request.method == "POST"
            assert p.request.headers["Content-Type"] == "application/json"
            assert p.request.body is not None
            self.bodies.append(json.loads(p.request.body))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [item for b in self.bodies if kind in b for item in b[kind]]


async def capture_pushes(g: Gw, url: str = "http://push.example/dinstar") -> PushLog:
    await g.sv.dinstar.set_push_target(url=url, types=PUSH_TYPES)
    log = PushLog(g.rt, g.sv)
    assert g.rt.events is not None
    g.rt.events.subscribe(log)
    return log


# ---- a Digest client written from RFC 7616, independent of the server code -------------
_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]+))')


def parse_challenges(values: list[str]) -> list[dict[str, str]]:
    out = []
    for v in values:
        scheme, _, rest = v.partition(" ")
        params = {m[0].lower(): m[1] or m[2] for m in _PARAM.findall(rest)} if rest else {}
        params["scheme"] = scheme
        out.append(params)
    return out


def digest_header(
    challenge: dict[str, str],
    *,
    method: str,
    uri: str,
    user: str = USER,
    password: str = PASSWORD,
    nc: int = 1,
    realm: str | None = None,
    cnonce: str | None = None,
) -> str:
    alg = challenge.get("algorithm", "MD5")
    h: Callable[[str], str] = (
        (lambda s: hashlib.sha256(s.encode()).hexdigest())
        if alg == "SHA-256"
        else (lambda s: hashlib.md5(s.encode()).hexdigest())
    )
    realm = realm or challenge["realm"]
    cnonce = cnonce or os.urandom(8).hex()
    ha1 = h(f"{user}:{realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    ncv = f"{nc:08x}"
    resp = h(f"{ha1}:{challenge['nonce']}:{ncv}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{challenge["nonce"]}", uri="{uri}", '
        f'algorithm={alg}, qop=auth, nc={ncv}, cnonce="{cnonce}", response="{resp}", '
        f'opaque="{challenge.get("opaque", "")}"'
    )
