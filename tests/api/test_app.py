"""Operations endpoints: /healthz and Prometheus /metrics (README "Running it")."""

from __future__ import annotations

import base64
import logging
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from simgate.api.dialects.itnio.auth import sign
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.testing.clock import FakeClock

from ..store.util import account, lease, queue


def client(runtime: Runtime) -> httpx.AsyncClient:
    app = runtime.app(dialects=())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[s.name + (f"{{{labels}}}" if labels else "")] = s.value
    return out


async def test_healthz(runtime: Runtime) -> None:
    async with client(runtime) as c:
        r = await c.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_healthz_reports_a_dead_database(runtime: Runtime) -> None:
    assert runtime.services is not None
    async with client(runtime) as c:
        await runtime.store.db.close()
        r = await c.get("/healthz")
    assert r.status_code == 503
    assert r.json()["status"] == "error"


async def test_metrics_queue_depth_and_oldest_age(
    runtime: Runtime, services: Services, clock: FakeClock
) -> None:
    async with client(runtime) as c:
        empty = samples((await c.get("/metrics")).text)
        assert empty["simgate_queue_depth"] == 0
        assert empty["simgate_queue_oldest_age_seconds"] == 0

        acc = await account(services)
        await queue(runtime, acc, 3)
        clock.set(clock.now_ms() + 90_000)
        await queue(runtime, acc, 2)
        await lease(runtime.store, clock.now_ms(), limit=1)  # leased: no longer queued
        clock.set(clock.now_ms() + 30_000)
        r = await c.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    m = samples(r.text)
    assert m["simgate_queue_depth"] == 4
    assert m["simgate_queue_oldest_age_seconds"] == 120.0


async def test_unknown_path_is_404_not_500(runtime: Runtime) -> None:
    async with client(runtime) as c:
        r = await c.get("/nothing-here")
    assert r.status_code == 404


# ---- a client that goes away mid-body (issue 14 item 10) ----------------------------------
async def _hang_up_mid_body(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> list[Any]:
    """Send half a body, then the disconnect a server sends when the client closes."""
    incoming = [
        {"type": "http.request", "body": b'{"username": "gw", "pass', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Any] = []

    async def receive() -> Any:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"t"), (b"content-length", b"4000"), *headers],
        "client": ("198.51.100.7", 40000),
        "server": ("127.0.0.1", 8080),
    }
    await app(scope, receive, send)  # must not raise: the server would log a traceback
    return sent


@pytest.mark.parametrize(
    ("path", "auth"),
    [
        ("/sms/send", False),  # OpenVox: the body is read before authentication
        ("/sms/sendSms", False),  # itniotech reads the body before checking the signature
        ("/api/send_sms", True),  # Dinstar authenticates from headers, then reads the body
    ],
)
async def test_client_gone_mid_body_is_one_info_line(
    runtime: Runtime, services: Services, caplog: pytest.LogCaptureFixture, path: str, auth: bool
) -> None:
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
    acc = await services.accounts.create_account(name="mallory", balance="1")
    if auth:
        await services.accounts.create_user(acc.id, username="mal", password="mal-pass-1")
        headers.append((b"authorization", b"Basic " + base64.b64encode(b"mal:mal-pass-1")))
    if path == "/sms/sendSms":
        key = await services.accounts.create_key(acc.id)
        ts = str(services.clock.now_ms() // 1000)
        signed = sign(key.key, key.secret, ts)
        headers += [(b"api-key", key.key.encode()), (b"timestamp", ts.encode())]
        headers.append((b"sign", signed.encode()))
    caplog.set_level(logging.DEBUG)
    await _hang_up_mid_body(runtime.app(), path, headers)
    mine = [r for r in caplog.records if r.name.startswith("simgate")]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    gone = [r for r in mine if "disconnected" in r.getMessage()]
    assert len(gone) == 1, caplog.text
    assert gone[0].levelno == logging.INFO
    assert gone[0].exc_info is None  # one line, no traceback
    assert path in gone[0].getMessage()
