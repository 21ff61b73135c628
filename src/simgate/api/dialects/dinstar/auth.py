"""HTTP Basic and Digest (RFC 7617, RFC 7616) against gateway users (spec §2.1, §7).

- A request without valid credentials gets 401 with three challenges in this order: Digest
  MD5, Digest SHA-256 and Basic (spec Amendments: stock Digest clients such as Python's urllib
  read only the first challenge and know no SHA-256), so ``curl --anyauth`` picks Digest. Both
  Digest challenges carry the same nonce: clients that fold repeated headers into one
  (requests, httpx) still compute a response the server accepts.
- Nonces are stateless: ``hex(ms).random.HMAC-SHA256(secret, ...)``, valid for
  ``nonce_ttl_seconds``. The secret lives in the database, so any API process accepts a
  nonce another one issued. An expired nonce gets ``stale=true`` (RFC 7616 §3.3) and is not
  counted as a failed login.
- Replays: each process remembers the nonce-counts it has seen per nonce and refuses a repeat
  (``api.auth.NonceCounts``: a few bytes per nonce, at most ``MAX_CACHE`` nonces, none
  trusted again once forgotten). With several API processes a replay sent to a *different*
  process than the original is not detected (documented limitation; the nonce lifetime
  bounds the window).
- Basic verifies with scrypt (~50 ms on purpose). A successful verification is cached in
  memory for ``basic_cache_seconds`` keyed by a salted SHA-256 of the credentials, so steady
  traffic costs one hash, not one scrypt, per request (throughput benchmarks rely on this).
  When that entry expires the user is looked up again, and the scrypt is skipped if the
  stored hash is the one these credentials matched before (``api.auth.VerifiedHashes``: a
  new password has a new salt, so a changed password is checked afresh and the old one
  refused). A wrong password or unknown user always pays the scrypt.
- Failed logins are limited per (username, client IP) and per client IP
  (``api.auth.LoginLimiter``): after ``login_failures`` failures of one user from one address,
  or ``login_failures_per_address`` of any users from it, in ``login_window_seconds``, that
  pair (or address) gets 401 without any check until the window moves on. Every table here
  is bounded, expires with its window and costs O(1) per request (issue 14).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from simgate.api.auth import (
    LoginLimiter,
    NonceCounts,
    TtlCache,
    VerifiedHashes,
)
from simgate.api.dialects.dinstar.settings import DinstarSettings
from simgate.clock import Clock
from simgate.domain.accounts import GatewayUser
from simgate.services.accounts import DIGEST_REALM, AccountService, verify_password

OPAQUE = "5cd1e1a7a7e0c0de"
USER_CACHE_S = 5.0
MAX_CACHE = 10_000
_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda b: hashlib.md5(b).hexdigest(),  # noqa: S324 (RFC 7616 §3.4.2, legacy clients)
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
}
# MD5 first: a client that reads one challenge only must get one it knows (spec Amendments).
CHALLENGE_ORDER = ("MD5", "SHA-256")


@dataclass(frozen=True, slots=True)
class Denied:
    stale: bool = False
    limited: bool = False


class Authenticator:
    def __init__(
        self,
        *,
        accounts: AccountService,
        clock: Clock,
        cfg: DinstarSettings,
        secret: Callable[[], Awaitable[bytes]],
        check_password: Callable[[str, str], bool] = verify_password,
    ) -> None:
        self._accounts = accounts
        # (password, stored hash) -> match; a seam so tests can count the scrypts.
        self._check_password = check_password
        self._clock = clock
        self._ttl_ms = cfg.nonce_ttl_seconds * 1000
        self._secret_source = secret
        self._secret: bytes | None = cfg.nonce_secret.encode() if cfg.nonce_secret else None
        self._secret_lock = asyncio.Lock()
        self._salt = os.urandom(16)
        self._basic: TtlCache[bytes, GatewayUser] = TtlCache(
            clock, ttl_s=cfg.basic_cache_seconds, max_entries=MAX_CACHE, epoch=accounts.epoch
        )
        self._verified: VerifiedHashes[bytes] = VerifiedHashes(max_entries=MAX_CACHE)
        self._users: TtlCache[str, GatewayUser | None] = TtlCache(
            clock, ttl_s=USER_CACHE_S, max_entries=MAX_CACHE, epoch=accounts.epoch
        )
        self._nonces = NonceCounts(clock, ttl_s=cfg.nonce_ttl_seconds, max_nonces=MAX_CACHE)
        self._failures = LoginLimiter(
            clock,
            per_user=cfg.login_failures,
            per_address=cfg.login_failures_per_address,
            window_s=cfg.login_window_seconds,
            max_keys=MAX_CACHE,
        )

    def table_sizes(self) -> dict[str, int]:
        """Entries per in-memory table (benchmarks and tests watch them stay bounded)."""
        return {
            **self._failures.sizes(),
            "basic_cache": len(self._basic),
            "verified_hashes": len(self._verified),
            "users": len(self._users),
            "nonce_counts": len(self._nonces),
        }

    # ---- challenges --------------------------------------------------------------------
    async def challenges(self, *, stale: bool = False) -> list[str]:
        nonce = await self._new_nonce()
        flag = "true" if stale else "false"
        digest = [
            f'Digest realm="{DIGEST_REALM}", qop="auth", algorithm={alg}, '
            f'nonce="{nonce}", opaque="{OPAQUE}", stale={flag}'
            for alg in CHALLENGE_ORDER
        ]
        return [*digest, f'Basic realm="{DIGEST_REALM}", charset="UTF-8"']

    async def _key(self) -> bytes:
        if self._secret is None:
            async with self._secret_lock:
                if self._secret is None:
                    self._secret = await self._secret_source()
        return self._secret

    async def _new_nonce(self) -> str:
        body = f"{self._clock.now_ms():x}.{secrets.token_hex(8)}"
        mac = hmac.new(await self._key(), body.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{body}.{mac}"

    async def _nonce_state(self, nonce: str) -> tuple[str, int]:
        """("ok"|"stale"|"bad", issued ms)."""
        try:
            stamp, rand, mac = nonce.split(".")
            issued = int(stamp, 16)
        except ValueError:
            return "bad", 0
        good = hmac.new(await self._key(), f"{stamp}.{rand}".encode(), hashlib.sha256)
        if not hmac.compare_digest(good.hexdigest()[:32], mac):
            return "bad", 0
        age = self._clock.now_ms() - issued
        if age < -60_000:  # from the future (clock skew between processes is tolerated)
            return "bad", 0
        return ("stale" if age > self._ttl_ms else "ok"), issued

    # ---- the check -----------------------------------------------------------------------
    async def authenticate(
        self, *, method: str, uri: str, header: str | None, ip: str
    ) -> GatewayUser | Denied:
        if not header:
            return Denied()
        scheme, _, rest = header.strip().partition(" ")
        if scheme.lower() == "basic":
            return await self._basic_auth(rest.strip(), ip)
        if scheme.lower() == "digest":
            return await self._digest_auth(rest, method=method, uri=uri, ip=ip)
        return Denied()

    async def _basic_auth(self, token: str, ip: str) -> GatewayUser | Denied:
        try:
            raw = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return Denied()
        username, sep, password = raw.partition(":")
        if not sep or not username:
            return Denied()
        if self._failures.blocked(username, ip):
            return Denied(limited=True)
        key = hashlib.sha256(self._salt + raw.encode()).digest()
        cached = self._basic.get(key)
        if cached is not None:
            return cached
        read_at = self._basic.mark()
        user = await self._user(username)
        stored = user.password_hash if user is not None else None
        ok = await self._verified.verify(key, password, stored, self._check_password)
        if user is None or not ok:
            self._failures.fail(username, ip)
            return Denied()
        self._basic.put(key, user, read_at=read_at)
        return user

    async def _digest_auth(
        self, rest: str, *, method: str, uri: str, ip: str
    ) -> GatewayUser | Denied:
        p = {m.group(1).lower(): _unquote(m.group(2), m.group(3)) for m in _PARAM.finditer(rest)}
        username = p.get("username", "")
        needed = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
        if any(not p.get(k) for k in needed) or p["qop"] != "auth":
            return Denied()
        algorithm = p.get("algorithm", "MD5").upper()
        if p["realm"] != DIGEST_REALM or algorithm not in _HASHES or p["uri"] != uri:
            self._failures.fail(username, ip)
            return Denied()
        if self._failures.blocked(username, ip):
            return Denied(limited=True)
        state, issued = await self._nonce_state(p["nonce"])
        if state == "bad":
            self._failures.fail(username, ip)
            return Denied()
        if state == "stale":
            return Denied(stale=True)
        try:
            nc = int(p["nc"], 16) if len(p["nc"]) <= 16 else -1  # RFC 7616: 8 hex digits
        except ValueError:
            return Denied()
        if nc < 0:
            return Denied()
        user = await self._user(username)
        if user is None:
            self._failures.fail(username, ip)
            return Denied()
        h = _HASHES[algorithm]
        ha1 = user.digest_sha256 if algorithm == "SHA-256" else user.digest_md5
        ha2 = h(f"{method}:{p['uri']}".encode())
        expected = h(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth:{ha2}".encode())
        if not hmac.compare_digest(expected, p["response"].lower()):
            self._failures.fail(username, ip)
            return Denied()
        if not self._nonces.first_use(p["nonce"], issued, nc):
            return Denied(stale=True)  # replayed nc: make the client start afresh
        return user

    async def _user(self, username: str) -> GatewayUser | None:
        return await self._users.get_or_load(username, lambda: self._accounts.get_user(username))


def _unquote(quoted: str | None, bare: str | None) -> str:
    if quoted is not None:
        return re.sub(r"\\(.)", r"\1", quoted)
    return bare or ""
