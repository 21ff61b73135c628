"""/metrics on an address of its own (issue 14 item 16: it had no access control and listed
customers' push endpoints on the public API address)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from simgate.cli.metrics_listen import metrics_server
from simgate.runtime import Runtime
from simgate.settings import HttpSettings
from tests.conftest import make_settings, opened


@pytest.fixture
async def split(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = make_settings(tmp_path, sqlite_url, http={"metrics_listen": "127.0.0.1:0"})
    async with opened(settings) as rt:
        assert rt.services is not None
        acc = await rt.services.accounts.create_account(name="mallory", balance="1")
        await rt.services.accounts.create_user(acc.id, username="mal", password="mal-pass-1")
        yield rt


async def test_metrics_move_to_their_own_address(split: Runtime) -> None:
    # A customer, with its own credentials, on the API address: no /metrics there.
    api = httpx.ASGITransport(app=split.app())
    async with httpx.AsyncClient(transport=api, base_url="http://t") as c:
        assert (await c.get("/metrics", auth=("mal", "mal-pass-1"))).status_code == 404
        assert (await c.get("/healthz")).status_code == 200

    server = metrics_server(split)
    assert server is not None
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(3000):  # uvicorn sets a flag, not an event, once it listens
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            got = await c.get("/metrics")
            assert got.status_code == 200
            assert "simgate_queue_depth" in got.text
            # Only /metrics lives there: no API, no dialect routes.
            assert (await c.post("/sms/send", json={})).status_code == 404
    finally:
        server.should_exit = True
        await task


async def test_without_the_option_metrics_stay_on_the_api_address(runtime: Runtime) -> None:
    assert metrics_server(runtime) is None
    api = httpx.ASGITransport(app=runtime.app())
    async with httpx.AsyncClient(transport=api, base_url="http://t") as c:
        assert (await c.get("/metrics")).status_code == 200


@pytest.mark.parametrize("value", ["9100", "host:", ":9100", "a:b", "127.0.0.1:70000", "[::1"])
def test_a_bad_metrics_address_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValueError, match="metrics_listen"):
        HttpSettings(metrics_listen=value)


def test_metrics_address_forms() -> None:
    assert HttpSettings(metrics_listen="127.0.0.1:9100").metrics_address == ("127.0.0.1", 9100)
    assert HttpSettings(metrics_listen="[::1]:9100").metrics_address == ("::1", 9100)
    assert HttpSettings().metrics_address is None
