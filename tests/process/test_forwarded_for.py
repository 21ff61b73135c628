"""Only ``[http] trusted_proxies`` decides whether X-Forwarded-For counts (issue 14 item 5).

uvicorn's own ``proxy_headers`` (on by default) believed X-Forwarded-For from 127.0.0.1 even
with ``trusted_proxies = []``: any local peer (stunnel, haproxy in TCP mode, an ssh tunnel)
could pick its address, pass an API key's IP allow-list and dodge every login limit. These
tests run a real ``simgate serve`` and connect from 127.0.0.1, as such a peer does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from simgate.api.dialects.itnio.auth import sign
from simgate.domain.accounts import ApiKey
from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port, write_config
from tests.process.support import open_services

pytestmark = pytest.mark.slow

BALANCE = "/sms/getBalance"


def _settings(tmp_path: Path, port: int, trusted: list[str]) -> dict[str, Any]:
    return {
        "data_dir": str(tmp_path / "data"),
        "master_key": "forwarded-for-test-key-0123456789",
        "log_level": "warning",
        "demo": {"create": False},
        "http": {"port": port, "trusted_proxies": trusted},
    }


async def _keys(data: dict[str, Any]) -> tuple[ApiKey, ApiKey]:
    """The victim's key, allowed only from 203.0.113.7, and the attacker's own key."""
    rt = await open_services(load_settings(None, overrides=data))
    try:
        assert rt.services is not None
        acme = await rt.services.accounts.create_account(name="acme", balance="10")
        victim = await rt.services.accounts.create_key(acme.id, allow_ips=["203.0.113.7"])
        mallory = await rt.services.accounts.create_account(name="mallory", balance="10")
        return victim, await rt.services.accounts.create_key(mallory.id)
    finally:
        await rt.close()


def _headers(key: str, secret: str, forwarded: str) -> dict[str, str]:
    ts = str(int(time.time()))  # the server runs on the real clock
    return {
        "Api-Key": key,
        "Timestamp": ts,
        "Sign": sign(key, secret, ts),
        "X-Forwarded-For": forwarded,
    }


async def _status(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    r = await client.get(BALANCE, headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


async def test_forwarded_for_from_a_local_peer_is_ignored_without_trusted_proxies(
    tmp_path: Path,
) -> None:
    port = free_port()
    data = _settings(tmp_path, port, trusted=[])
    victim, _ = await _keys(data)
    cfg = write_config(tmp_path / "simgate.toml", data)
    with SimgateProcess(["serve"], workdir=tmp_path, config=cfg, port=port) as api:
        api.wait_healthy(60)
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            # the allow-list sees 127.0.0.1, whatever the peer claims
            spoofed = _headers(victim.key, victim.secret, "203.0.113.7")
            assert await _status(client, spoofed) == "-2"
            # a different claimed address per guess does not reset the address's limit
            codes = [
                await _status(client, _headers(f"guess{i:03d}", "x", f"198.51.100.{i}"))
                for i in range(31)
            ]
            assert codes == ["-1"] * 30 + ["-15"]  # itnio.auth_fail_limit_ip = 30
        api.stop()


async def test_forwarded_for_counts_from_a_trusted_proxy(tmp_path: Path) -> None:
    port = free_port()
    data = _settings(tmp_path, port, trusted=["127.0.0.1"])
    victim, _ = await _keys(data)
    cfg = write_config(tmp_path / "simgate.toml", data)
    with SimgateProcess(["serve"], workdir=tmp_path, config=cfg, port=port) as api:
        api.wait_healthy(60)
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            assert await _status(client, _headers(victim.key, victim.secret, "203.0.113.7")) == "0"
            assert await _status(client, _headers(victim.key, victim.secret, "203.0.113.8")) == "-2"
        api.stop()
