"""Signed-header authentication (spec §1.1, §7): every refusal code and the replay rule."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from simgate.api.dialects.itnio.auth import Authenticator, _is_timestamp, sign
from simgate.api.dialects.itnio.envelope import ItnioError
from simgate.api.dialects.itnio.replay import fingerprint, replay_key
from simgate.api.dialects.itnio.settings import ItnioSettings
from simgate.domain.accounts import AppKind
from simgate.services.cache_epoch import POLL_MS
from simgate.services.itnio import NewAnswered
from simgate.testing.clock import FakeClock
from tests.api.itnio.conftest import Itnio, make_itnio
from tests.conftest import make_settings, opened

BALANCE = "/sms/getBalance"


def test_worked_signature_vector_of_the_spec() -> None:
    # spec §1.1: key bDqJFiq9, secret 7bz1lzh9, ts 1630468800
    assert sign("bDqJFiq9", "7bz1lzh9", "1630468800") == "05d7a50893e22a5c4bb3216ae3396c7c"


async def test_valid_signature_and_upper_case_hex(itnio: Itnio) -> None:
    assert (await itnio.get(BALANCE))["status"] == "0"
    assert (await itnio.get(BALANCE, headers=itnio.headers(upper=True)))["status"] == "0"


async def test_thirteen_digit_millisecond_timestamp(itnio: Itnio) -> None:
    got = await itnio.get(BALANCE, headers=itnio.headers(ts=str(itnio.clock.now_ms())))
    assert got["status"] == "0"


@pytest.mark.parametrize(
    "ts",
    [
        "163046880",
        "16304688000",
        "163046880000",
        "16304688000000",
        "1630468800 ",
        "+630468800",
        "abcdefghij",
        "1630468800.5",
        "-630468800",
    ],
)
async def test_timestamp_must_be_10_or_13_digits(itnio_sqlite: Itnio, ts: str) -> None:
    got = await itnio_sqlite.get(BALANCE, headers=itnio_sqlite.headers(ts=ts))
    assert got == {"status": "-1", "reason": got["reason"]}
    assert got["reason"].startswith("authentication error")


@pytest.mark.parametrize(
    "ts",
    [
        "1630468800",
        "1630468800000",
        "163046880²",  # a Latin-1 digit: str.isdigit() alone would take it
        "١٦٣٠٤٦٨٨٠٠",  # Arabic-Indic digits, likewise
        "1630468800\n",
        "",
        "16304688000",
    ],
)
def test_timestamp_check_is_the_regex_it_replaced(ts: str) -> None:
    """The str test of the Timestamp (issue 15) takes exactly what the regex took."""
    assert _is_timestamp(ts) == bool(re.fullmatch(r"[0-9]{10}|[0-9]{13}", ts))


async def test_missing_headers_are_minus_1(itnio: Itnio) -> None:
    for drop in ("Api-Key", "Timestamp", "Sign"):
        headers = itnio.headers()
        del headers[drop]
        assert (await itnio.get(BALANCE, headers=headers))["status"] == "-1"


async def test_wrong_secret_unknown_key_and_bad_sign_are_minus_1(itnio: Itnio) -> None:
    assert (await itnio.get(BALANCE, headers=itnio.headers(secret="nope")))["status"] == "-1"
    assert (await itnio.get(BALANCE, headers=itnio.headers(key="zzzzzzzz")))["status"] == "-1"
    headers = itnio.headers()
    headers["Sign"] = headers["Sign"][:-1] + "g"
    assert (await itnio.get(BALANCE, headers=headers))["status"] == "-1"
    headers["Sign"] = headers["Sign"] + "00"  # length-extended
    assert (await itnio.get(BALANCE, headers=headers))["status"] == "-1"


@pytest.mark.parametrize("skew", [-301, 301, -100_000])
async def test_timestamp_outside_window_is_minus_16(itnio_sqlite: Itnio, skew: int) -> None:
    ts = str(itnio_sqlite.clock.now_ms() // 1000 + skew)
    got = await itnio_sqlite.get(BALANCE, headers=itnio_sqlite.headers(ts=ts))
    assert got == {"status": "-16", "reason": "timestamp expires"}  # the vendor's own example


async def test_timestamp_at_edge_of_window_passes(itnio: Itnio) -> None:
    ts = str(itnio.clock.now_ms() // 1000 - 300)
    assert (await itnio.get(BALANCE, headers=itnio.headers(ts=ts)))["status"] == "0"


async def test_revoked_key_is_minus_1(itnio: Itnio) -> None:
    await itnio.services.accounts.revoke_key(itnio.key.key)
    assert (await itnio.get(BALANCE))["status"] == "-1"


@pytest.mark.parametrize("change", ["revoke", "lock"])
async def test_a_change_in_this_process_is_seen_by_the_next_request(
    backend: str, tmp_path: Path, clock: FakeClock, change: str
) -> None:
    """The credential cache drops what it holds on a change (services/cache_epoch.py), long
    as its lifetime is."""
    async with make_itnio(backend, tmp_path, clock, itnio={"auth_cache_seconds": 60}) as env:
        assert (await env.get(BALANCE))["status"] == "0"  # the key is cached now
        if change == "revoke":
            await env.services.accounts.revoke_key(env.key.key)
        else:
            await env.services.accounts.set_locked(env.account.id, True)
        assert (await env.get(BALANCE))["status"] == ("-1" if change == "revoke" else "-13")


async def test_a_key_revoked_by_another_process_is_refused_within_the_poll(
    backend: str, tmp_path: Path, clock: FakeClock
) -> None:
    """The CLI revokes a key: an API process caching it for 60 s refuses it within
    POLL_MS of the next requests (services/cache_epoch.py), not 60 s later."""
    async with make_itnio(backend, tmp_path, clock, itnio={"auth_cache_seconds": 60}) as env:
        assert (await env.get(BALANCE))["status"] == "0"  # cached, the stamp looked at
        async with opened(make_settings(tmp_path / "cli", backend)) as cli:
            assert cli.services is not None
            await cli.services.accounts.revoke_key(env.key.key)
        clock.set(clock.now_ms() + POLL_MS - 1)
        assert (await env.get(BALANCE, headers=env.headers()))["status"] == "0"  # the bound
        clock.set(clock.now_ms() + 1)
        assert (await env.get(BALANCE, headers=env.headers()))["status"] == "-1"


async def test_locked_account_is_minus_13(itnio: Itnio) -> None:
    await itnio.services.accounts.set_locked(itnio.account.id, True)
    assert (await itnio.get(BALANCE))["status"] == "-13"


async def _allow_list_env(itnio: Itnio, allow: list[str]) -> dict[str, str]:
    key = await itnio.services.accounts.create_key(itnio.account.id, allow_ips=allow)
    return itnio.headers(key=key.key, secret=key.secret)


async def test_ip_allow_list_is_minus_2(itnio: Itnio) -> None:
    # the ASGI client connects from 127.0.0.1
    assert (await itnio.get(BALANCE, headers=await _allow_list_env(itnio, ["10.0.0.0/8"])))[
        "status"
    ] == "-2"
    assert (await itnio.get(BALANCE, headers=await _allow_list_env(itnio, ["127.0.0.1"])))[
        "status"
    ] == "0"


async def test_forwarded_for_is_ignored_from_untrusted_peer(itnio: Itnio) -> None:
    headers = await _allow_list_env(itnio, ["203.0.113.7"])
    headers["X-Forwarded-For"] = "203.0.113.7"
    assert (await itnio.get(BALANCE, headers=headers))["status"] == "-2"


async def test_forwarded_for_counts_from_trusted_proxy(
    backend: str, tmp_path: Path, clock: FakeClock
) -> None:
    async with make_itnio(
        backend, tmp_path, clock, http={"trusted_proxies": ["127.0.0.1/32", "10.9.9.9"]}
    ) as env:
        headers = await _allow_list_env(env, ["203.0.113.7"])
        # the client's own claim (leftmost) is ignored: the nearest untrusted hop counts
        headers["X-Forwarded-For"] = "198.51.100.1, 203.0.113.7, 10.9.9.9"
        assert (await env.get(BALANCE, headers=headers))["status"] == "0"
        headers["X-Forwarded-For"] = "203.0.113.7, 198.51.100.1"
        assert (await env.get(BALANCE, headers=headers))["status"] == "-2"


async def test_failed_authentications_are_rate_limited(
    backend: str, tmp_path: Path, clock: FakeClock
) -> None:
    cfg = {"auth_cache_seconds": 0, "auth_fail_limit_ip": 5, "auth_fail_limit_key_ip": 3}
    async with make_itnio(backend, tmp_path, clock, itnio=cfg) as env:
        bad = env.headers(secret="wrong")
        codes = [(await env.get(BALANCE, headers=bad))["status"] for _ in range(5)]
        assert codes == ["-1", "-1", "-1", "-15", "-15"]
        # this key from this address is refused even with a good signature, until the
        # window passes
        assert (await env.get(BALANCE))["status"] == "-15"
        other = await env.services.accounts.create_key(env.account.id)
        # other keys from this IP: 3 failures so far, IP limit 5
        assert (await env.get(BALANCE, headers=env.headers(key=other.key, secret=other.secret)))[
            "status"
        ] == "0"
        await clock.advance(60)  # auth_fail_window_seconds
        assert (await env.get(BALANCE))["status"] == "0"


def _from(app: FastAPI, ip: str) -> httpx.AsyncClient:
    """A client of ``app`` connecting from ``ip`` (the TCP peer, no proxy)."""
    transport = httpx.ASGITransport(app=app, client=(ip, 6000))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def _status(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    r = await client.get(BALANCE, headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


async def test_bad_signatures_from_elsewhere_do_not_lock_the_key_owner_out(itnio: Itnio) -> None:
    """Issue 14 item 7: the Api-Key travels in clear; 104 bad signatures for it from 4
    addresses used to lock its owner out everywhere (per-key limit 100)."""
    app = itnio.rt.app()  # one process: every client below talks to the same limiters
    attacker_acct = await itnio.services.accounts.create_account(name="mallory", balance="1")
    attacker_key = await itnio.services.accounts.create_key(attacker_acct.id)
    forged = itnio.headers(secret="guessed")  # the owner's key, a wrong secret
    for n in range(4):
        async with _from(app, f"198.51.100.{n + 1}") as attacker:
            for _ in range(26):
                assert await _status(attacker, forged) in ("-1", "-15")
    async with _from(app, "127.0.0.1") as owner:
        assert await _status(owner, itnio.headers()) == "0"
    async with _from(app, "198.51.100.4") as attacker:
        # that key from the attacker's address is locked (the key x address pair)...
        assert await _status(attacker, itnio.headers()) == "-15"
        # ...but the address itself (26 < 30 failures) may still use its own key
        own = itnio.headers(key=attacker_key.key, secret=attacker_key.secret)
        assert await _status(attacker, own) == "0"


async def test_key_wide_limit_is_much_higher_and_alerts(
    backend: str, tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    defaults = ItnioSettings()
    assert defaults.auth_fail_limit_key >= 10 * defaults.auth_fail_limit_ip
    cfg = {"auth_cache_seconds": 0, "auth_fail_limit_key": 40}
    async with make_itnio(backend, tmp_path, clock, itnio=cfg) as env:
        app = env.rt.app()
        with caplog.at_level("WARNING"):
            for n in range(4):
                async with _from(app, f"198.51.100.{n + 1}") as attacker:
                    for _ in range(10):
                        await _status(attacker, env.headers(secret="guessed"))
        warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert any(env.key.key in m for m in warned), warned
        async with _from(app, "127.0.0.1") as owner:
            assert await _status(owner, env.headers()) == "-15"
            await clock.advance(60)
            assert await _status(owner, env.headers()) == "0"


async def test_ip_limit_blocks_unknown_keys(backend: str, tmp_path: Path, clock: FakeClock) -> None:
    cfg = {"auth_cache_seconds": 0, "auth_fail_limit_ip": 2, "auth_fail_limit_key": 100}
    async with make_itnio(backend, tmp_path, clock, itnio=cfg) as env:
        for i in range(2):
            got = await env.get(BALANCE, headers=env.headers(key=f"guess{i:03d}", secret="x"))
            assert got["status"] == "-1"
        assert (await env.get(BALANCE))["status"] == "-15"


# ---- replays (§7) ---------------------------------------------------------------------
SEND = "/sms/sendSms"


async def _count_messages(env: Itnio) -> int:
    async with env.rt.store.db.read() as conn:
        return len(await env.rt.store.messages.page(conn, account_id=env.account.id, limit=1000))


async def test_identical_request_is_answered_once(itnio: Itnio) -> None:
    body = {"appId": itnio.app.app_id, "numbers": "8613800138000", "content": "hello"}
    headers = itnio.headers()
    first = await itnio.post(SEND, body, headers=headers)
    again = await itnio.post(SEND, body, headers=headers)
    assert first["status"] == "0"
    assert again == first
    assert await _count_messages(itnio) == 1
    # same signature, different body: a new request (clients send several per second)
    body["content"] = "hello again"
    third = await itnio.post(SEND, body, headers=headers)
    assert third["status"] == "0"
    assert third["array"][0]["msgId"] != first["array"][0]["msgId"]
    assert await _count_messages(itnio) == 2


async def test_a_refused_send_is_answered_once_too(itnio: Itnio) -> None:
    """A send refused for its balance records the refusal: its identical replay hears it
    again, even after a top-up that would let a new request through, and sends nothing."""
    sv = itnio.services.accounts
    await sv.correct(itnio.account.id, amount="-100", reason="test: empty the account")
    body = {"appId": itnio.app.app_id, "numbers": "8613800138000", "content": "broke"}
    headers = itnio.headers()
    first = await itnio.post(SEND, body, headers=headers)
    assert first["status"] == "-10"
    await sv.topup(itnio.account.id, amount="100")
    assert await itnio.post(SEND, body, headers=headers) == first
    assert await _count_messages(itnio) == 0
    body["content"] = "funded"  # a new request is sent
    assert (await itnio.post(SEND, body, headers=headers))["status"] == "0"
    assert await _count_messages(itnio) == 1


async def test_identical_get_send_is_answered_once(itnio: Itnio) -> None:
    params = {"appId": itnio.app.app_id, "numbers": "8613800138000", "content": "hi"}
    headers = itnio.headers()
    first = await itnio.get(SEND, params, headers=headers)
    assert await itnio.get(SEND, params, headers=headers) == first
    assert await _count_messages(itnio) == 1


async def test_replay_holds_across_processes(
    backend: str, tmp_path: Path, clock: FakeClock
) -> None:
    """Two runtimes on one database stand for two `simgate serve` processes."""
    async with (
        make_itnio(backend, tmp_path, clock) as env,
        _second_process(env, backend, tmp_path, clock) as other,
    ):
        body = {"appId": env.app.app_id, "numbers": "8613800138000", "content": "x"}
        headers = env.headers()
        first = await env.post(SEND, body, headers=headers)
        r = await other.post(SEND, headers=headers, json=body)
        assert r.json() == first
        assert await _count_messages(env) == 1


@contextlib.asynccontextmanager
async def _second_process(
    env: Itnio, backend: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:

    settings = make_settings(tmp_path, backend, itnio={"auth_cache_seconds": 0})
    async with opened(settings, clock=clock, migrate=False) as rt:
        transport = httpx.ASGITransport(app=rt.app(), client=("127.0.0.1", 5001))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def test_voice_app_id_is_not_an_sms_app(itnio: Itnio) -> None:
    voice = await itnio.services.accounts.create_app(itnio.account.id, kind=AppKind.VOICE)
    got = await itnio.post(
        SEND, {"appId": voice.app_id, "numbers": "8613800138000", "content": "x"}
    )
    assert got["status"] == "-14"


async def test_concurrent_identical_requests_send_once(itnio: Itnio) -> None:
    body = {"appId": itnio.app.app_id, "numbers": "8613800138000", "content": "race"}
    headers = itnio.headers()
    answers = await asyncio.gather(*(itnio.post(SEND, body, headers=headers) for _ in range(5)))
    assert answers[0]["status"] == "0"
    assert all(a == answers[0] for a in answers)
    assert await _count_messages(itnio) == 1


def _send_digest(headers: dict[str, str], body: bytes) -> str:
    """The replay fingerprint of a POST to the send path with these signed headers."""
    return fingerprint(
        key=headers["Api-Key"],
        timestamp=headers["Timestamp"],
        sign=headers["Sign"],
        method="POST",
        target=SEND,
        body=body,
    )


async def test_a_claim_whose_owner_died_is_taken_over(itnio: Itnio) -> None:
    """Issue 14 item 14: the process that claimed a send was killed before it answered (its
    claim stays PENDING, nothing was sent). The client's identical retry is sent, once,
    instead of answering -18 for the rest of the 5-minute window."""
    body = orjson.dumps({"appId": itnio.app.app_id, "numbers": "8613800138000", "content": "x"})
    headers = itnio.headers()
    fp = replay_key(headers["Timestamp"], _send_digest(headers, body))
    now = itnio.clock.now_ms()
    claim = await itnio.services.itnio.claim_replay(
        fingerprint=fp, expires_ms=now + 400_000, now_ms=now, purge=False
    )
    assert claim.owned  # the dead process's claim
    await itnio.clock.advance(_wait_s(itnio) + 1)
    first = await itnio.post(SEND, headers=headers, content=body)
    assert first["status"] == "0", first
    again = await itnio.post(SEND, headers=headers, content=body)
    assert again == first
    assert await _count_messages(itnio) == 1


async def test_a_send_recorded_under_its_key_of_before_0016_is_still_answered_once(
    itnio: Itnio,
) -> None:
    """Migration 0016 keys records by Timestamp then digest; a record written before it
    (the bare digest) still answers its request's replays until it expires (spec §7), and
    a new request is sent and recorded under the new key."""
    body = orjson.dumps({"appId": itnio.app.app_id, "numbers": "8613800138000", "content": "x"})
    headers = itnio.headers()
    old = _send_digest(headers, body)
    now = itnio.clock.now_ms()
    stored = '{"status":"0","reason":"answered before the upgrade"}'
    sv = itnio.services.itnio
    assert (await sv.record_answer(NewAnswered(old, now + 400_000, now, stored))).owned
    assert await sv.legacy_replays_until() == now + 400_000
    assert await itnio.post(SEND, headers=headers, content=body) == orjson.loads(stored)
    assert await _count_messages(itnio) == 0
    fresh = orjson.dumps({"appId": itnio.app.app_id, "numbers": "8613800138000", "content": "y"})
    first = await itnio.post(SEND, headers=headers, content=fresh)
    assert first["status"] == "0", first
    assert await itnio.post(SEND, headers=headers, content=fresh) == first
    assert await _count_messages(itnio) == 1


async def test_a_taken_over_claim_fences_out_its_first_owner(itnio: Itnio) -> None:
    """The first owner was only slow, not dead: once its claim is taken over, its answer is
    not stored over the new owner's (one of them commits, never both)."""
    sv = itnio.services.itnio
    now = itnio.clock.now_ms()
    slow = await sv.claim_replay(fingerprint="f", expires_ms=now + 400_000, now_ms=now, purge=False)
    wait_ms = int(_wait_s(itnio) * 1000)
    young = await sv.claim_replay(
        fingerprint="f",
        expires_ms=now + 400_000,
        now_ms=now + 1,
        purge=False,
        takeover_after_ms=wait_ms,
    )
    assert not young.owned  # a claim still young is its owner's: the replay waits
    taken = await sv.claim_replay(
        fingerprint="f",
        expires_ms=now + 400_000,
        now_ms=now + wait_ms + 1,
        purge=False,
        takeover_after_ms=wait_ms,
    )
    assert (slow.owned, taken.owned) == (True, True)
    assert slow.token != taken.token
    assert not await sv.complete_replay(fingerprint="f", response="slow", token=slow.token)
    assert await sv.complete_replay(fingerprint="f", response="new", token=taken.token)
    assert await sv.replay_response("f") == "new"


def _wait_s(env: Itnio) -> float:
    return ItnioSettings.model_validate(env.services.settings.itnio).replay_wait_seconds


async def test_failure_tables_stay_bounded_and_expire_on_the_clock(itnio: Itnio) -> None:
    """Issue 14 item 2, not timed: fresh keys from many addresses leave at most one record
    per key, pair and address, and the window's passing (the injected clock) clears them."""
    cfg = ItnioSettings(auth_cache_seconds=1)
    auth = Authenticator(itnio.services, cfg)

    def request(key: str, ip: str) -> Request:
        headers = [(b"api-key", key.encode()), (b"timestamp", b"1700000000"), (b"sign", b"0" * 32)]
        return Request(
            {
                "type": "http",
                "method": "GET",
                "path": BALANCE,
                "headers": headers,
                "query_string": b"",
                "client": (ip, 1),
            }
        )

    for i in range(1000):
        with pytest.raises(ItnioError):
            await auth(request(f"fresh{i:05d}", f"10.0.{i // 20}.1"))
    sizes = auth.table_sizes()
    assert sizes["fail_addresses"] == 50
    assert sizes["fail_key_address"] == sizes["fail_keys"] == 1000
    await itnio.clock.advance(60)  # auth_fail_window_seconds
    with pytest.raises(ItnioError):
        await auth(request("late", "10.9.9.9"))
    assert auth.table_sizes() == {
        "fail_addresses": 1,
        "fail_key_address": 1,
        "fail_keys": 1,
        "credentials": 1,
    }


def test_replay_keys_lead_with_the_timestamp_in_milliseconds() -> None:
    """Migration 0016: keys sort in Timestamp order (records go into the index's last
    pages), a 10-digit and a 13-digit Timestamp of one instant share the prefix, and the
    digest after it is the request's fingerprint as before (it tells them apart)."""
    digest = "ab" * 32
    assert replay_key("1700000000", digest) == "1700000000000" + digest
    assert replay_key("1700000000123", digest) == "1700000000123" + digest
    assert replay_key("0000000001", digest) == "0000000001000" + digest
    keys = [replay_key(ts, digest) for ts in ("0999999999", "1700000000", "1700000000001")]
    assert keys == sorted(keys)
    assert {len(k) for k in keys} == {77}


def test_the_fingerprint_is_the_one_records_were_written_with() -> None:
    """Replay records outlive a restart and are shared by processes of several versions
    (spec §7): the digest must stay sha256 over key, Timestamp, Sign, method and target,
    each followed by a NUL, then the body (the values of simgate before issue 15's cut)."""
    sent = fingerprint(
        key="k",
        timestamp="1700000000",
        sign="ab" * 16,
        method="POST",
        target="/sms/sendSms",
        body='{"a":"é"}'.encode(),
    )
    assert sent == "6ffa39c1d3f2194e6c7593bb06d9d648a8646588c04aab3d9adadabc6d52ade2"
    odd = fingerprint(
        key="k\udcff", timestamp="", sign="", method="GET", target="/v3/sendSms?x=é", body=b""
    )
    assert odd == "e847e7c80a7fd9326fa9207185acb586d1bf0cf094826a7adced5cd84f799f05"
