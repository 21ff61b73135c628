"""Fixtures for the itniotech dialect: a runtime, an SMS app with a key, a signing client."""

from __future__ import annotations

import base64
import contextlib
import io
import math
import struct
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from simgate.api.dialects.itnio.auth import sign
from simgate.domain.accounts import Account, ApiKey, App, AppKind
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.testing.clock import FakeClock
from tests.conftest import make_settings
from tests.support.pg import truncate_pg


@dataclass
class Itnio:
    rt: Runtime
    services: Services
    clock: FakeClock
    client: httpx.AsyncClient
    account: Account
    app: App
    key: ApiKey
    peer: list[str] = field(default_factory=lambda: ["127.0.0.1"])

    def headers(
        self,
        *,
        ts: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        upper: bool = False,
    ) -> dict[str, str]:
        ts = ts if ts is not None else str(self.clock.now_ms() // 1000)
        k = key if key is not None else self.key.key
        s = sign(k, secret if secret is not None else self.key.secret, ts)
        return {
            "Content-Type": "application/json;charset=UTF-8",
            "Api-Key": k,
            "Timestamp": ts,
            "Sign": s.upper() if upper else s,
        }

    async def get(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        headers = kw.pop("headers", None) or self.headers()
        r = await self.client.get(path, params=params, headers=headers, **kw)
        assert r.status_code == 200, r.text
        return r.json()

    async def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        headers = kw.pop("headers", None) or self.headers()
        if "content" not in kw:
            kw["json"] = body
        r = await self.client.post(path, headers=headers, **kw)
        assert r.status_code == 200, r.text
        return r.json()


@contextlib.asynccontextmanager
async def make_itnio(
    backend: str, tmp_path: Path, clock: FakeClock, **extra: Any
) -> AsyncIterator[Itnio]:
    if backend.startswith("postgresql"):
        await truncate_pg(backend)
    extra.setdefault("itnio", {"auth_cache_seconds": 0})
    rt = Runtime(make_settings(tmp_path, backend, **extra), role="admin", clock=clock)
    services = await rt.open()
    try:
        account = await services.accounts.create_account(
            name="acme", balance="100", timezone="Asia/Shanghai"
        )
        app = await services.accounts.create_app(account.id, kind=AppKind.SMS)
        key = await services.accounts.create_key(account.id)
        transport = httpx.ASGITransport(app=rt.app(), client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield Itnio(rt, services, clock, client, account, app, key)
    finally:
        await rt.close()


@pytest.fixture
async def itnio(backend: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Itnio]:
    async with make_itnio(backend, tmp_path, clock) as env:
        yield env


@pytest.fixture
async def itnio_sqlite(sqlite_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Itnio]:
    """For tests of parsing only, where the database backend makes no difference."""
    async with make_itnio(sqlite_url, tmp_path, clock) as env:
        yield env


# ---- voice (spec §1.11-§1.16) -------------------------------------------------------------
async def add_voice_app(env: Itnio, account_id: int | None = None) -> App:
    """A voice app (appId) of the env's account, or of ``account_id``."""
    owner = env.account.id if account_id is None else account_id
    return await env.services.accounts.create_app(owner, kind=AppKind.VOICE)


def wav_bytes(seconds: float = 0.5, rate: int = 8000) -> bytes:
    """A small valid WAV (mono, 16-bit, a 440 Hz tone) built with the stdlib."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate)))
        for n in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


def wav_b64(seconds: float = 0.5) -> str:
    return base64.b64encode(wav_bytes(seconds)).decode()


async def raw_envelope(env: Itnio, method: str, path: str, **kw: Any) -> dict[str, Any]:
    """Any request (``content=`` raw bytes, ``headers=``/``extra_headers=``), checked to come
    back as the envelope: HTTP 200, JSON, String ``status`` and ``reason`` (spec §7)."""
    headers = kw.pop("headers", None) or env.headers()
    headers.update(kw.pop("extra_headers", {}))
    r = await env.client.request(method, path, headers=headers, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    data = r.json()
    assert isinstance(data["status"], str)
    assert isinstance(data["reason"], str)
    return data  # type: ignore[no-any-return]
