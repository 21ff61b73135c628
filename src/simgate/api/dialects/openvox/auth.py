"""Body credentials (spec §3.2: ``username`` and ``password`` in every request).

Passwords are checked against the gateway users (scrypt, ~50 ms of CPU each). Doing that on
every request would cap a worker at ~20 requests per second, so a *successful* check is
remembered for ``auth_cache_seconds`` in memory, keyed by a SHA-256 of the credentials
(never the password itself). Failures are never cached. The scrypt runs in a thread so the
event loop keeps serving, and concurrent first requests with the same credentials share one
check. Consequence, by design: a changed password or a locked account takes effect within
the cache lifetime (10 s by default), not instantly.

Guessing is throttled: after ``login_failures`` wrong passwords for one username from one
address within ``login_window_seconds``, that pair gets 401 without a scrypt until the window
passes (so a password-guessing client cannot burn the CPU either).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from simgate.clock import Clock
from simgate.domain.accounts import Account
from simgate.errors import AuthError, NotFound
from simgate.services.accounts import verify_password
from simgate.services.container import Services


@dataclass(frozen=True, slots=True)
class Caller:
    username: str
    account: Account


def credential_key(username: str, password: str) -> bytes:
    # Length-prefixed so ("ab", "c") and ("a", "bc") never share a key.
    return hashlib.sha256(f"{len(username)}:{username}:{password}".encode()).digest()


class Authenticator:
    def __init__(
        self,
        services: Services,
        *,
        ttl_seconds: float,
        max_entries: int,
        max_failures: int = 10,
        window_seconds: float = 300,
    ) -> None:
        self._services = services
        self._clock: Clock = services.clock
        self._ttl_ms = int(ttl_seconds * 1000)
        self._max = max_entries
        self._cache: OrderedDict[bytes, tuple[int, Caller]] = OrderedDict()
        self._pending: dict[bytes, asyncio.Future[Caller]] = {}
        self._max_failures = max_failures
        self._window_ms = int(window_seconds * 1000)
        # (username, address) → (window end, failures); bounded like the cache.
        self._failures: OrderedDict[tuple[str, str], tuple[int, int]] = OrderedDict()

    async def check(self, username: str | None, password: str | None, address: str = "") -> Caller:
        if not username or not password:
            raise AuthError("username and password are required")
        key = credential_key(username, password)
        now = self._clock.now_ms()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        who = (username, address)
        until, count = self._failures.get(who, (0, 0))
        if until > now and count >= self._max_failures:
            raise AuthError("too many failed logins: try again later")
        try:
            return await self._check_once(key, username, password)
        except AuthError:
            until, count = self._failures.get(who, (0, 0))  # re-read: others failed meanwhile
            if until <= now:
                until, count = now + self._window_ms, 0
            self._failures[who] = (until, count + 1)
            self._failures.move_to_end(who)
            while len(self._failures) > self._max:
                self._failures.popitem(last=False)
            raise

    async def _check_once(self, key: bytes, username: str, password: str) -> Caller:
        now = self._clock.now_ms()
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[Caller] = asyncio.get_running_loop().create_future()
        self._pending[key] = fut
        try:
            caller = await self._verify(username, password)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved here, so an unawaited future logs nothing
            raise
        else:
            fut.set_result(caller)
            if self._ttl_ms > 0:
                self._remember(key, caller, now)
            return caller
        finally:
            del self._pending[key]

    async def _verify(self, username: str, password: str) -> Caller:
        user = await self._services.accounts.get_user(username)
        # Same message either way: no hint whether the user exists.
        if user is None:
            raise AuthError("authentication failed: wrong username or password")
        ok = await asyncio.to_thread(verify_password, password, user.password_hash)
        if not ok:
            raise AuthError("authentication failed: wrong username or password")
        try:
            account = await self._services.accounts.get_account(user.account_id)
        except NotFound:
            raise AuthError("authentication failed: the user has no account") from None
        return Caller(username, account)

    def _remember(self, key: bytes, caller: Caller, now: int) -> None:
        self._cache[key] = (now + self._ttl_ms, caller)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
