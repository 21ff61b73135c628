"""Body credentials under attack (issue 14 item 6): the failure table cannot be flooded, and an
unknown username costs the same password hash as a known one (no user enumeration).
Two accounts on one instance; the attacker uses its own credentials and addresses.

And the cache's expiry (issue 15, idle submit p99): a right password whose stored hash has
not changed is let in again without a scrypt, while a changed password, a lock and a wrong
password are seen exactly as before."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from simgate.api.dialects.openvox.auth import Authenticator
from simgate.errors import AuthError
from simgate.runtime import Runtime
from simgate.testing.clock import FakeClock
from tests.api.openvox.conftest import OV, PASSWORD, USER, envelope, open_ov
from tests.support.passwords import CountingPasswordCheck, change_password, lock_account

URI = "/sms/get_valid_spans"


@asynccontextmanager
async def _opened(
    backend: str, tmp_path: Path, clock: FakeClock, **openvox: Any
) -> AsyncIterator[tuple[Runtime, OV, FastAPI]]:
    rt, ov = await open_ov(backend, tmp_path, clock, openvox=openvox)
    try:
        yield rt, ov, rt.app()  # one app: every client below meets the same tables
    finally:
        await ov.client.aclose()
        await rt.close()


async def _login(app: FastAPI, ip: str, username: str, password: str) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app, client=(ip, 7000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post(URI, json={"username": username, "password": password})
    return envelope(r, URI)


async def test_junk_usernames_do_not_evict_a_locked_user(
    backend: str, tmp_path: Path, clock: FakeClock
) -> None:
    # A small table (the setting bounds the credential cache and the failure table alike),
    # so the flood needed to overflow it stays small: 4,200 names against 4,096 by default.
    async with _opened(backend, tmp_path, clock, auth_cache_entries=20, login_failures=3) as (
        _,
        ov,
        app,
    ):
        mallory = await ov.sv.accounts.create_account(name="mallory", balance="1")
        await ov.sv.accounts.create_user(mallory.id, username="mallory", password="own-pass")
        for _ in range(3):
            assert (await _login(app, "198.51.100.1", USER, "guess"))["code"] == 401
        for n in range(3):  # three addresses, each below the per-address limit
            for i in range(20):
                got = await _login(app, f"198.51.100.{n + 2}", f"junk{n}-{i}", "x")
                assert got["code"] == 401
        # Had the victim's counter been pushed out, the right password would get in now.
        locked = await _login(app, "198.51.100.1", USER, PASSWORD)
        assert locked["code"] == 401
        assert "too many" in locked["msg"]
        # the attacker's own account is not collateral damage, from its other addresses
        assert (await _login(app, "198.51.100.2", "mallory", "own-pass"))["code"] == 200
        assert (await _login(app, "203.0.113.9", USER, PASSWORD))["code"] == 200


async def test_one_address_spraying_usernames_is_locked(
    backend: str, tmp_path: Path, clock: FakeClock
) -> None:
    async with _opened(backend, tmp_path, clock) as (_, _ov, app):
        for i in range(30):  # login_failures_per_address = 30
            assert (await _login(app, "198.51.100.7", f"guess{i}", "x"))["code"] == 401
        refused = await _login(app, "198.51.100.7", USER, PASSWORD)
        assert refused["code"] == 401
        assert "too many" in refused["msg"]
        assert (await _login(app, "198.51.100.8", USER, PASSWORD))["code"] == 200
        await clock.advance(300)  # login_window_seconds
        assert (await _login(app, "198.51.100.7", USER, PASSWORD))["code"] == 200


async def test_unknown_users_cost_the_same_password_hash(
    backend: str, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a timing test: the work itself is compared (one scrypt, same parameters)."""
    async with _opened(backend, tmp_path, clock) as (_, _ov, app):
        calls: list[tuple[int, int, int]] = []
        real = hashlib.scrypt

        def counting(password: bytes, **kw: Any) -> bytes:
            calls.append((kw["n"], kw["r"], kw["p"]))
            return real(password, **kw)

        monkeypatch.setattr(hashlib, "scrypt", counting)
        assert (await _login(app, "198.51.100.1", USER, "wrong"))["code"] == 401
        known = list(calls)
        calls.clear()
        got = await _login(app, "198.51.100.1", "nobody-by-that-name", "wrong")
        assert got["code"] == 401
        assert calls == known == [(2**14, 8, 1)]


async def test_failure_tables_stay_bounded_and_expire_on_the_clock(
    backend: str, tmp_path: Path, clock: FakeClock
) -> None:
    """Issue 14 item 2, not timed: one record per (name, address) and per address at most,
    and the window's passing (the injected clock) clears them."""
    async with _opened(backend, tmp_path, clock) as (_, ov, _app):
        auth = Authenticator(ov.sv, ttl_seconds=10, max_entries=50)
        for n in range(3):
            for i in range(32):  # 30 checked (one scrypt each), then refused without one
                with pytest.raises(AuthError):
                    await auth.check(f"fresh{n}-{i}", "x", f"10.0.0.{n}")
        # 90 (name, address) pairs failed: the table keeps its bound of 50
        assert auth.table_sizes() == {
            "login_pairs": 50,
            "login_addresses": 3,
            "credentials": 0,
            "verified_hashes": 0,
        }
        await clock.advance(300)  # the window
        with pytest.raises(AuthError):
            await auth.check("late", "x", "10.0.9.9")
        assert auth.table_sizes() == {
            "login_pairs": 1,
            "login_addresses": 1,
            "credentials": 0,
            "verified_hashes": 0,
        }


# ---- issue 15: the cache's expiry costs a read, not a scrypt ---------------------------------
TTL_S = 10.0  # auth_cache_seconds' default


def _counted(ov: OV, max_entries: int = 50) -> tuple[Authenticator, CountingPasswordCheck]:
    scrypts = CountingPasswordCheck()
    auth = Authenticator(ov.sv, ttl_seconds=TTL_S, max_entries=max_entries, check_password=scrypts)
    return auth, scrypts


async def test_after_expiry_the_right_password_needs_no_scrypt(ov: OV) -> None:
    auth, scrypts = _counted(ov)
    assert (await auth.check(USER, PASSWORD, "10.0.0.1")).account.id == ov.account.id
    assert scrypts.calls == 1
    for _ in range(3):
        await ov.clock.advance(TTL_S + 1)  # the cached Caller is gone each time
        caller = await auth.check(USER, PASSWORD, "10.0.0.1")
        assert caller.username == USER
        assert caller.account.id == ov.account.id
    assert scrypts.calls == 1
    assert auth.table_sizes()["verified_hashes"] == 1


async def test_a_changed_password_refuses_the_old_one_at_the_first_request_after_expiry(
    ov: OV,
) -> None:
    auth, scrypts = _counted(ov)
    await auth.check(USER, PASSWORD, "10.0.0.1")
    await change_password(ov.rt.store, USER, "a-new-pass")
    # Within the cache time the old one still works: the documented bound, unchanged.
    await auth.check(USER, PASSWORD, "10.0.0.1")
    assert scrypts.calls == 1
    await ov.clock.advance(TTL_S + 1)
    with pytest.raises(AuthError):
        await auth.check(USER, PASSWORD, "10.0.0.1")
    assert scrypts.calls == 2  # the new hash differs: checked, and refused
    assert (await auth.check(USER, "a-new-pass", "10.0.0.1")).username == USER
    assert scrypts.calls == 3
    await ov.clock.advance(TTL_S + 1)
    with pytest.raises(AuthError):  # and the old one never comes back
        await auth.check(USER, PASSWORD, "10.0.0.1")


async def test_a_locked_account_is_seen_within_the_cache_time(ov: OV) -> None:
    auth, scrypts = _counted(ov)
    assert not (await auth.check(USER, PASSWORD, "10.0.0.1")).account.locked
    await lock_account(ov.rt.store, ov.account.id)
    await ov.clock.advance(TTL_S + 1)
    caller = await auth.check(USER, PASSWORD, "10.0.0.1")
    assert caller.account.locked  # re-read, though the scrypt was skipped
    assert scrypts.calls == 1


async def test_a_locked_account_is_refused_by_the_api_after_the_cache_time(
    backend: str, tmp_path: Path, clock: FakeClock
) -> None:
    async with _opened(backend, tmp_path, clock) as (_, ov, app):
        assert (await _login(app, "10.0.0.1", USER, PASSWORD))["code"] == 200
        await lock_account(ov.rt.store, ov.account.id)
        await clock.advance(TTL_S + 1)
        refused = await _login(app, "10.0.0.1", USER, PASSWORD)
        assert refused["code"] == 401
        assert "locked" in refused["msg"]


async def test_wrong_passwords_and_unknown_users_still_pay_a_scrypt(ov: OV) -> None:
    auth, scrypts = _counted(ov)
    await auth.check(USER, PASSWORD, "10.0.0.1")
    for expired in (False, True, True):
        if expired:
            await ov.clock.advance(TTL_S + 1)
        before = scrypts.calls
        with pytest.raises(AuthError):
            await auth.check(USER, "wrong", "10.0.0.2")
        with pytest.raises(AuthError):
            await auth.check("nobody", PASSWORD, "10.0.0.3")
        assert scrypts.calls == before + 2
    assert auth.table_sizes()["verified_hashes"] == 1  # failures never enter


async def test_the_verified_hashes_are_bounded(ov: OV) -> None:
    auth, scrypts = _counted(ov, max_entries=2)
    for name in ("u1", "u2", "u3"):
        await ov.sv.accounts.create_user(ov.account.id, username=name, password=f"{name}-pass")
        await auth.check(name, f"{name}-pass", "10.0.0.1")
    assert auth.table_sizes()["verified_hashes"] == 2
    await ov.clock.advance(TTL_S + 1)
    await auth.check("u3", "u3-pass", "10.0.0.1")  # the newest kept its entry
    assert scrypts.calls == 3
    await auth.check("u1", "u1-pass", "10.0.0.1")  # the oldest was pushed out: hashed again
    assert scrypts.calls == 4
