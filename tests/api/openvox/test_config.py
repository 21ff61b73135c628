"""/smsoutbox/get_config and /smsoutbox/set_config (seed 002 §2.2.2-3, spec §3.3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from simgate.testing.clock import FakeClock
from tests.api.openvox.conftest import OV, open_ov

PUBLIC = "93.184.216.34"  # a global address literal: the SSRF guard needs no DNS for it
FULL = {
    "enable": 1,
    "reports_enable": 1,
    "results_enable": 0,
    "url_http": "https",
    "url_host": PUBLIC,
    "url_port": "8443",
    "url_path": "/hooks/openvox.php",
    "url_from_num": "from",
    "url_to_num": "to",
    "url_portname": "pname",
    "url_message": "text",
    "url_time": "when",
    "url_imsi": "sim",
    "url_status": "state",
    "url_user_defined": "token=abc&site=7",
}


async def test_defaults_before_any_set_config(ov: OV) -> None:
    doc = await ov.post("/smsoutbox/get_config")
    assert doc["code"] == 200
    (cfg,) = doc["data"]
    assert set(cfg) == set(FULL)
    assert (cfg["enable"], cfg["reports_enable"], cfg["results_enable"]) == (0, 0, 0)
    assert cfg["url_from_num"] == "num"  # the OpenVox demo receiver's names (§3.4)


async def test_set_then_get_round_trips_every_field(ov: OV) -> None:
    doc = await ov.post("/smsoutbox/set_config", FULL)
    assert doc["code"] == 200, doc["msg"]
    assert doc["data"] == [FULL]
    got = await ov.post("/smsoutbox/get_config")
    assert got["data"] == [FULL]
    # Partial update: only the fields given change; string ints are accepted.
    doc = await ov.post("/smsoutbox/set_config", {"results_enable": "1", "url_port": 9000})
    assert doc["code"] == 200
    got = (await ov.post("/smsoutbox/get_config"))["data"][0]
    assert got == {**FULL, "results_enable": 1, "url_port": "9000"}


async def test_config_is_per_account(ov: OV) -> None:
    assert (await ov.post("/smsoutbox/set_config", FULL))["code"] == 200
    other = await ov.sv.accounts.create_account(name="other", balance="1")
    await ov.sv.accounts.create_user(other.id, username="other", password="other-pass")
    doc = await ov.post("/smsoutbox/get_config", {"username": "other", "password": "other-pass"})
    assert doc["data"][0]["enable"] == 0


BAD_CONFIGS: list[tuple[dict[str, Any], str]] = [
    ({"enable": 2}, "enable must be 1 (on) or 0 (off)"),
    ({"reports_enable": "yes"}, "reports_enable must be an integer"),
    ({"url_http": "ftp"}, "url_http must be http or https"),
    ({"url_http": 1}, "url_http must be a string"),
    ({"url_port": 70000}, "url_port must be 1..65535"),
    ({"url_port": "http"}, "url_port must be an integer"),
    ({"url_host": "evil.com/path"}, "url_host must be a host name"),
    ({"url_host": "user@evil.com"}, "url_host must be a host name"),
    ({"url_host": "evil.com:80"}, "url_host must be a host name"),
    ({"url_path": "/a b"}, "url_path must be a path"),
    ({"url_path": "/a?x=1"}, "url_path must be a path"),
    ({"url_from_num": "a&b"}, "url_from_num must be a query-parameter name"),
    ({"url_status": "x=y"}, "url_status must be a query-parameter name"),
    ({"url_time": "x" * 65}, "url_time is too long"),
    ({"url_user_defined": "a=1#frag"}, "url_user_defined must be a query string"),
    ({"url_user_defined": "a=\n1"}, "url_user_defined must be a query string"),
    ({"enable": 1, "url_host": ""}, "url_host is required"),
]


async def test_invalid_values_are_400_and_change_nothing(ov: OV) -> None:
    before = (await ov.post("/smsoutbox/get_config"))["data"]
    for body, words in BAD_CONFIGS:
        doc = await ov.post("/smsoutbox/set_config", body)
        assert (doc["code"], doc["data"]) == (400, []), body
        assert words in doc["msg"], (body, doc["msg"])
    assert (await ov.post("/smsoutbox/get_config"))["data"] == before


PRIVATE_HOSTS = [
    ("127.0.0.1", "loopback"),
    ("10.1.2.3", "private"),
    ("169.254.169.254", "link-local"),
    ("::1", "loopback"),
    ("[::ffff:127.0.0.1]", "wraps 127.0.0.1"),
    ("localhost", "localhost"),
    ("0x7f.1", "non-standard spelling"),
]


async def test_private_targets_are_refused_by_the_ssrf_guard(ov: OV) -> None:
    for host, words in PRIVATE_HOSTS:
        doc = await ov.post("/smsoutbox/set_config", {"enable": 1, "url_host": host})
        assert doc["code"] == 400, host
        assert words in doc["msg"], (host, doc["msg"])
    assert (await ov.post("/smsoutbox/get_config"))["data"][0]["enable"] == 0


async def test_switched_off_pushes_do_not_need_a_reachable_host(ov: OV) -> None:
    doc = await ov.post("/smsoutbox/set_config", {"enable": 0, "url_host": "10.0.0.5"})
    assert doc["code"] == 200


@pytest.fixture
async def lan(backend: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[OV]:
    rt, handle = await open_ov(
        backend, tmp_path, clock, push={"allow_cidrs": ["10.0.0.0/8", "127.0.0.1/32"]}
    )
    try:
        yield handle
    finally:
        await handle.client.aclose()
        await rt.close()


async def test_operator_allowed_networks_may_be_configured(lan: OV) -> None:
    doc = await lan.post("/smsoutbox/set_config", {"enable": 1, "url_host": "10.1.2.3"})
    assert doc["code"] == 200
    doc = await lan.post("/smsoutbox/set_config", {"enable": 1, "url_host": "192.168.1.1"})
    assert doc["code"] == 400
