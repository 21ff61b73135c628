"""Envelope, authentication and hostile bodies (spec §3.2, §7): clear code/msg, never a 500."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from starlette.responses import Response

from simgate.api.dialects.openvox import auth as openvox_auth
from simgate.api.dialects.openvox.auth import credential_key
from simgate.api.dialects.openvox.envelope import JsonAnswer
from simgate.errors import ConfigError
from simgate.runtime import Runtime
from simgate.testing.clock import FakeClock
from tests.api.openvox.conftest import OV, PASSWORD, USER, envelope, open_ov
from tests.conftest import make_settings


async def test_credentials_at_top_level_and_inside_data(ov: OV) -> None:
    top = await ov.post("/sms/get_valid_spans")
    assert top["code"] == 200
    inner = await ov.post(
        "/sms/get_valid_spans", {"data": {"username": USER, "password": PASSWORD}}, auth=False
    )
    assert inner["code"] == 200
    assert inner["data"] == top["data"]


async def test_missing_and_wrong_credentials_are_401(ov: OV) -> None:
    missing = await ov.post("/sms/get_valid_spans", auth=False)
    assert (missing["code"], missing["data"]) == (401, [])
    assert "username" in missing["msg"]
    wrong = await ov.post("/sms/get_valid_spans", {"password": "nope"})
    assert wrong["code"] == 401
    unknown = await ov.post("/sms/get_valid_spans", {"username": "ghost"})
    assert unknown["code"] == 401
    assert unknown["msg"] == wrong["msg"]  # no hint whether the user exists


async def test_credentials_of_the_wrong_type_are_400(ov: OV) -> None:
    doc = await ov.post("/sms/get_valid_spans", {"username": 12345})
    assert doc["code"] == 400
    assert "username must be a string" in doc["msg"]
    doc = await ov.post("/sms/get_valid_spans", {"password": ["a"]})
    assert doc["code"] == 400
    doc = await ov.post("/sms/get_valid_spans", {"username": "gw\u0000"})
    assert doc["code"] == 400
    assert "NUL" in doc["msg"]


async def test_non_json_and_non_object_bodies_are_400(ov: OV) -> None:
    cases = {
        b"username=gw&password=x": "not valid JSON",
        b"": "empty",
        b"[1, 2]": "JSON object",
        b'"text"': "JSON object",
        b'{"username": "gw", ': "not valid JSON",
        b"\xff\xfe\x00garbage": "not valid JSON",
        json.dumps({"username": USER, "password": PASSWORD, "data": [1]}).encode(): "data",
        json.dumps({"username": USER, "password": PASSWORD, "data": "x"}).encode(): "data",
    }
    for body, words in cases.items():
        doc = await ov.raw("/sms/send", body)
        assert doc["code"] == 400, body
        assert words in doc["msg"], (body, doc["msg"])


async def test_oversized_body_is_refused_before_parsing(ov: OV) -> None:
    limit = ov.sv.settings.http.max_body_bytes
    doc = await ov.raw("/sms/send", b"{" + b" " * limit + b"}")
    assert doc["code"] == 400
    assert "too large" in doc["msg"]


async def test_other_methods_and_unknown_uris(ov: OV) -> None:
    doc = await ov.raw("/sms/get_valid_spans", b"", method="GET")
    assert doc["code"] == 400
    assert "POST" in doc["msg"]
    for uri in ("/smsoutbox/nope", "/smsinbox/x/y"):
        doc = await ov.post(uri)
        assert doc["code"] == 404
        assert uri in doc["msg"]


async def test_deeply_nested_json_is_a_clean_400(ov: OV) -> None:
    body = b'{"username": "gw", "password": "secret-pass", "msg": ' + b"[" * 5000 + b"]" * 5000
    doc = await ov.raw("/sms/send", body + b"}")
    assert doc["code"] == 400


async def test_auth_cache_expires_and_then_sees_a_locked_account(ov: OV) -> None:
    ok = await ov.post("/sms/get_valid_spans")
    assert ok["code"] == 200
    await ov.sv.accounts.set_locked(ov.account.id, True)
    await ov.clock.advance(ov.sv.settings.openvox.get("auth_cache_seconds", 10) + 1)
    doc = await ov.post("/sms/send", {"dest_num": "8613800138000", "msg": "hi"})
    assert doc["code"] == 401
    assert "locked" in doc["msg"]


def test_credential_key_separates_username_and_password() -> None:
    assert credential_key("ab", "c") != credential_key("a", "bc")
    assert credential_key("a", "b") == credential_key("a", "b")
    assert len(credential_key("a", "b")) == 32


def test_credential_key_is_keyed_blake2b_of_the_length_prefixed_credentials() -> None:
    """The copied keyed state gives RFC 7693's keyed BLAKE2b, as the one-call form did."""
    for user, password in (("a", "b"), ("bench", "bench-password"), ("ü" * 40, "x" * 300)):
        text = f"{len(user)}:{user}:{password}".encode()
        one_call = hashlib.blake2b(text, key=openvox_auth._PROCESS_KEY, digest_size=32).digest()
        assert credential_key(user, password) == one_call


async def test_password_guessing_is_throttled_per_user_and_address(ov: OV) -> None:
    for _ in range(10):
        assert (await ov.post("/sms/get_valid_spans", {"password": "guess"}))["code"] == 401
    doc = await ov.post("/sms/get_valid_spans")  # even the right password, for a while
    assert doc["code"] == 401
    assert "too many failed logins" in doc["msg"]
    await ov.clock.advance(301)
    assert (await ov.post("/sms/get_valid_spans"))["code"] == 200


async def test_bad_openvox_settings_fail_at_start(tmp_path: Path, clock: FakeClock) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cfg.db'}"
    for section, words in (
        ({"line": "nope"}, "openvox.line"),
        ({"page_size": 0}, "openvox.page_size"),
        ({"colour": "blue"}, "openvox.colour"),
    ):
        rt = Runtime(make_settings(tmp_path, url, openvox=section), role="admin", clock=clock)
        try:
            with pytest.raises(ConfigError, match=words):
                await rt.open()
        finally:
            await rt.close()


async def test_a_failing_store_is_code_500_in_the_envelope(ov: OV) -> None:
    assert (await ov.post("/sms/get_valid_spans"))["code"] == 200  # credentials now cached
    assert ov.rt._db is not None
    await ov.rt._db.close()  # the database goes away under the running app
    for uri, body in (
        ("/sms/send", {"dest_num": "8613800138000", "msg": "x"}),
        ("/smsoutbox/get", {}),
        ("/smsinbox/get", {}),
        ("/smsoutbox/get_config", {}),
    ):
        doc = await ov.post(uri, body)
        assert (doc["code"], doc["data"]) == (500, []), uri
        assert doc["msg"] in ("database unavailable, try again", "internal error"), doc["msg"]


async def test_behind_a_trusted_proxy_each_client_has_its_own_lockout(
    sqlite_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    rt, ov = await open_ov(sqlite_url, tmp_path, clock, http={"trusted_proxies": ["127.0.0.1"]})
    guesser = {"X-Forwarded-For": "203.0.113.7"}
    honest = {"X-Forwarded-For": "198.51.100.1"}

    async def login(headers: dict[str, str], password: str = PASSWORD) -> int:
        body = {"username": USER, "password": password}
        resp = await ov.client.post("/sms/get_valid_spans", json=body, headers=headers)
        return int(envelope(resp, "/sms/get_valid_spans")["code"])

    try:
        for _ in range(10):
            assert await login(guesser, "guess") == 401
        assert await login(guesser) == 401  # this client is locked out ...
        # ... and cannot escape by forging a hop: the proxy appends the address it saw.
        forged = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
        assert await login(forged) == 401
        assert await login(honest) == 200  # another client behind the same proxy is not
    finally:
        await ov.client.aclose()
        await rt.close()


async def test_forwarded_for_from_an_untrusted_peer_does_not_split_lockouts(ov: OV) -> None:
    for i in range(10):
        body = {"username": USER, "password": "guess"}
        headers = {"X-Forwarded-For": f"203.0.113.{i}"}  # forged: the peer is not trusted
        resp = await ov.client.post("/sms/get_valid_spans", json=body, headers=headers)
        assert envelope(resp, "/sms/get_valid_spans")["code"] == 401
    assert (await ov.post("/sms/get_valid_spans"))["code"] == 401


async def test_a_lock_made_in_this_process_is_seen_by_the_next_request(ov: OV) -> None:
    """Caches drop what they hold when an account changes (services/cache_epoch.py): no wait."""
    assert (await ov.post("/sms/get_valid_spans"))["code"] == 200  # login and account cached
    await ov.sv.accounts.set_locked(ov.account.id, True)
    doc = await ov.post("/sms/get_valid_spans")
    assert doc["code"] == 401
    assert "locked" in doc["msg"]


@pytest.mark.parametrize("body", [b"", b"{}", '{"msg":"短信 ok"}'.encode(), b"x" * 70_000])
async def test_a_json_answer_sends_what_starlettes_response_sends(body: bytes) -> None:
    """Byte for byte the ASGI messages of ``Response(body, media_type=...)`` (issue 15)."""

    async def sent(response: Response) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []

        async def send(message: dict[str, object]) -> None:
            out.append(message)

        await response({"type": "http"}, None, send)  # type: ignore[arg-type]
        return out

    theirs = Response(body, status_code=200, media_type="application/json")
    assert await sent(JsonAnswer(body)) == await sent(theirs)
