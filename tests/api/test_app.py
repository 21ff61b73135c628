"""Operations endpoints: /healthz and Prometheus /metrics (README "Running it")."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from simgate.api import http
from simgate.api.dialects.itnio.auth import sign
from simgate.domain.accounts import AppKind
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.testing.clock import FakeClock
from tests.conftest import make_settings, opened

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


# ---- a full disk (issue 14 item 13) --------------------------------------------------------
async def _cap_database(runtime: Runtime) -> None:
    """Make SQLite's storage full for real: the writer connection may not grow the file past
    its size now (``max_page_count``), so the next write that needs a page gets SQLITE_FULL,
    "database or disk is full", exactly as on a full disk."""

    async def cap(conn: Any) -> None:
        pages = (await conn.exec_driver_sql("PRAGMA page_count")).scalar_one()
        await conn.exec_driver_sql(f"PRAGMA max_page_count = {int(pages)}")

    await runtime.store.db.write(cap)


async def _uncap_database(runtime: Runtime) -> None:
    async def uncap(conn: Any) -> None:
        await conn.exec_driver_sql("PRAGMA max_page_count = 1073741823")

    await runtime.store.db.write(uncap)


async def test_a_full_disk_is_named_in_each_dialect_and_by_healthz(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with opened(make_settings(tmp_path, sqlite_url)) as rt:
        assert rt.services is not None
        sv = rt.services
        acc = await sv.accounts.create_account(name="acme", balance="1000")
        app = await sv.accounts.create_app(acc.id, kind=AppKind.SMS)
        key = await sv.accounts.create_key(acc.id)
        await sv.accounts.create_user(acc.id, username="gw", password="gw-pass-123")
        basic = {"Authorization": "Basic " + base64.b64encode(b"gw:gw-pass-123").decode()}
        transport = httpx.ASGITransport(app=rt.app())
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            sent = [0]

            async def itnio() -> str:
                sent[0] += 1  # a new body each time: an identical one is a replay (§7)
                ts = str(sv.clock.now_ms() // 1000)
                headers = {
                    "Api-Key": key.key,
                    "Timestamp": ts,
                    "Sign": sign(key.key, key.secret, ts),
                }
                body = {
                    "appId": app.app_id,
                    "numbers": "8613800138000",
                    "content": f"{sent[0]:150}",
                }
                doc = (await c.post("/sms/sendSms", json=body, headers=headers)).json()
                return f"{doc['status']}|{doc['reason']}"

            async def dinstar() -> str:
                body = {"text": "x" * 150, "param": [{"number": "8613800138000"}]}
                doc = (await c.post("/api/send_sms", json=body, headers=basic)).json()
                return f"{doc['error_code']}|{doc.get('error_msg', '')}"

            async def openvox() -> str:
                body = {"username": "gw", "password": "gw-pass-123", "dest_num": "8613800138000"}
                doc = (await c.post("/sms/send", json={**body, "msg": "x" * 150})).json()
                return f"{doc['code']}|{doc['msg']}"

            assert (await itnio()).startswith("0|")
            assert (await c.get("/healthz")).status_code == 200
            await _cap_database(rt)
            answers: dict[str, str] = {}
            for name, send in (("itnio", itnio), ("dinstar", dinstar), ("openvox", openvox)):
                for _ in range(400):  # until the pages the file has are used up
                    got = await send()
                    if not got.startswith(("0|", "200|", "202|")):
                        answers[name] = got
                        break
            assert answers["itnio"].startswith("-18|"), answers
            assert answers["dinstar"].startswith("500|"), answers
            assert answers["openvox"].startswith("500|"), answers
            for got in answers.values():
                assert "storage is full" in got, answers
            health = await c.get("/healthz")
            assert health.status_code == 503
            assert health.json()["detail"] == "StorageFull"
            assert "storage is full" in health.json()["message"]

            await _uncap_database(rt)  # room again: the next write works, health recovers
            assert (await itnio()).startswith("0|")
            assert (await c.get("/healthz")).status_code == 200
    # No traceback per refused request: the state change is logged, not every refusal.
    assert not [r for r in caplog.records if r.exc_info and "full" in r.getMessage()], caplog.text


# ---- the direct lane to self-answering endpoints (issue 15) --------------------------------
class Probe(http.SelfAnswering):
    """Records the scope it is called with; answers, or fails as a bug would."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(dict(scope))
        if self.fail:
            raise RuntimeError("a bug")
        await PlainTextResponse("probed")(scope, receive, send)


def _with_probe(runtime: Runtime, probe: Probe) -> FastAPI:
    app = runtime.app(dialects=())
    app.router.routes.insert(0, Route("/probe", probe))
    return app


async def _post(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await c.post(path, content=b"{}")


async def test_a_self_answering_endpoint_is_called_without_the_exception_layers(
    runtime: Runtime,
) -> None:
    probe = Probe()
    app = _with_probe(runtime, probe)
    answer = await _post(app, "/probe")
    assert (answer.status_code, answer.text) == (200, "probed")
    (scope,) = probe.scopes
    # Starlette's exception layer marks every scope it passes; the lane does not pass it.
    assert "starlette.exception_handlers" not in scope
    assert (scope["app"], scope["endpoint"], scope["path_params"]) == (app, probe, {})
    # The router's walk (the lane stands aside) gives the same answer through the layers.
    app.router.middleware_stack = app.router.app
    walked = await _post(app, "/probe")
    assert (walked.status_code, walked.headers, walked.content) == (
        answer.status_code,
        answer.headers,
        answer.content,
    )
    assert "starlette.exception_handlers" in probe.scopes[-1]


async def test_the_lane_stands_aside_for_middleware(runtime: Runtime) -> None:
    probe = Probe()
    app = _with_probe(runtime, probe)
    seen: list[str] = []

    class Middleware:
        def __init__(self, inner: ASGIApp) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(scope["path"])
            await self.inner(scope, receive, send)

    app.add_middleware(Middleware)
    assert (await _post(app, "/probe")).text == "probed"
    assert seen == ["/probe"]


async def test_a_bug_escaping_the_lane_is_handled_as_by_the_layers(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    app = _with_probe(runtime, Probe(fail=True))
    caplog.set_level(logging.ERROR)
    answers = [await _post(app, "/probe")]
    app.router.middleware_stack = app.router.app  # the layers
    answers.append(await _post(app, "/probe"))
    direct, walked = answers
    assert (direct.status_code, direct.content) == (walked.status_code, walked.content)
    assert direct.status_code == 500
    assert direct.json() == {"error": "internal error"}
    logged = [r for r in caplog.records if "unhandled error on POST /probe" in r.getMessage()]
    assert len(logged) == 2
    assert all(r.exc_info for r in logged)
