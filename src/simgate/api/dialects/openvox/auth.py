"""Body credentials (spec §3.2: ``username`` and ``password`` in every request).

Passwords are checked against the gateway users (scrypt, ~50 ms of CPU each). Doing that on
every request would cap a worker at ~20 requests per second, so a *successful* check is
remembered for ``auth_cache_seconds`` in memory, keyed by an HMAC-SHA-256 of the credentials
under a random key of this process (never the password itself). Failures are never cached. The
scrypt runs in a thread so the event loop keeps serving, and concurrent first requests with the
same credentials share one check. Consequence, by design: a changed password or a locked account
takes effect within the cache lifetime (10 s by default), not instantly.

When that cache entry expires the user and account are read again (so a lock or a new
password takes effect), but the scrypt is skipped when the user's stored hash is the very
one these credentials matched before (``api.auth.VerifiedHashes``): a steady sender no
longer pays ~50 ms (200 ms on a loaded box) on one request in every ``auth_cache_seconds``
(issue 15: idle submit p99). A wrong password or an unknown user still pays the scrypt.

Guessing is throttled (``api.auth.LoginLimiter``): after ``login_failures`` wrong passwords
for one username from one address, or ``login_failures_per_address`` for any usernames from
that address, within ``login_window_seconds``, that pair (or address) gets 401 without a
scrypt until the window passes (so a password-guessing client cannot burn the CPU either).
Fresh usernames cannot push a lock out of the bounded table (issue 14 item 6).

An unknown username is checked against a dummy hash with the same scrypt cost, so it is
answered no faster than a wrong password for a real user: the answer time does not tell
which usernames exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable

from simgate.api.auth import LoginLimiter, TtlCache, VerifiedHashes
from simgate.domain.accounts import Account
from simgate.domain.values import value_type
from simgate.errors import AuthError, NotFound
from simgate.services.accounts import verify_password
from simgate.services.container import Services


@value_type  # one per request (domain/values.py)
class Caller:
    username: str
    account: Account
    operator: bool = False  # the gateway user's role (issue 14 item 1)


# Keyed per process: the login caches keep these keys while the process runs, and an unkeyed
# SHA-256 of a password in a memory dump would be cheap to crack (Dinstar's cache does the same).
_PROCESS_KEY = os.urandom(32)
# The keyed state after the key block (RFC 7693 §3.3: the key is padded to one block and
# compressed first): each request copies it instead of compressing the key block again.
_KEYED = hashlib.blake2b(key=_PROCESS_KEY, digest_size=32)


def credential_key(username: str, password: str) -> bytes:
    # Length-prefixed so ("ab", "c") and ("a", "bc") never share a key. Keyed BLAKE2b is a
    # MAC by design (RFC 7693's keyed mode), in C: building hmac.new's Python object cost
    # ~5 us of each OpenVox request (2 % of a /sms/send's CPU, issue 15).
    mac = _KEYED.copy()
    mac.update(f"{len(username)}:{username}:{password}".encode())
    return mac.digest()


class Authenticator:
    def __init__(
        self,
        services: Services,
        *,
        ttl_seconds: float,
        max_entries: int,
        max_failures: int = 10,
        max_address_failures: int = 30,
        window_seconds: float = 300,
        check_password: Callable[[str, str], bool] = verify_password,
    ) -> None:
        self._services = services
        # (password, stored hash) -> match; a seam so tests can count the scrypts.
        self._check_password = check_password
        self._cache: TtlCache[bytes, Caller] = TtlCache(
            services.clock,
            ttl_s=ttl_seconds,
            max_entries=max_entries,
            epoch=services.accounts.epoch,
        )
        self._pending: dict[bytes, asyncio.Future[Caller]] = {}
        self._verified: VerifiedHashes[bytes] = VerifiedHashes(max_entries=max_entries)
        # Per (username, address) and per address; each table bounded like the cache.
        self._failures = LoginLimiter(
            services.clock,
            per_user=max_failures,
            per_address=max_address_failures,
            window_s=window_seconds,
            max_keys=max_entries,
        )

    def table_sizes(self) -> dict[str, int]:
        """Entries per in-memory table (benchmarks and tests watch them stay bounded)."""
        return {
            **self._failures.sizes(),
            "credentials": len(self._cache),
            "verified_hashes": len(self._verified),
        }

    async def check(self, username: str | None, password: str | None, address: str = "") -> Caller:
        if not username or not password:
            raise AuthError("username and password are required")
        key = credential_key(username, password)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if self._failures.blocked(username, address):
            raise AuthError("too many failed logins: try again later")
        try:
            return await self._check_once(key, username, password)
        except AuthError:
            self._failures.fail(username, address)
            raise

    async def _check_once(self, key: bytes, username: str, password: str) -> Caller:
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[Caller] = asyncio.get_running_loop().create_future()
        self._pending[key] = fut
        read_at = self._cache.mark()
        try:
            caller = await self._verify(key, username, password)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved here, so an unawaited future logs nothing
            raise
        else:
            fut.set_result(caller)
            self._cache.put(key, caller, read_at=read_at)
            return caller
        finally:
            del self._pending[key]

    async def _verify(self, key: bytes, username: str, password: str) -> Caller:
        user = await self._services.accounts.get_user(username)
        stored = user.password_hash if user is not None else None
        # Same message and the same scrypt either way: no hint whether the user exists.
        ok = await self._verified.verify(key, password, stored, self._check_password)
        if user is None or not ok:
            raise AuthError("authentication failed: wrong username or password")
        try:
            account = await self._services.accounts.get_account(user.account_id)
        except NotFound:
            raise AuthError("authentication failed: the user has no account") from None
        return Caller(username, account, user.operator)
