"""Signed-header authentication of the itniotech API (spec §1.1, §7); SMS and voice share it.

``Sign = md5(Api-Key + secret + Timestamp)``. Checks, in order: failure rate limit (-15),
headers present and well formed (-1; Timestamp exactly 10 or 13 digits, which also blocks
MD5 length-extension forgeries), key known and not revoked (-1), Sign equal in constant time
and case-insensitively (-1), Timestamp inside the window (-16), client IP allowed (-2),
account not locked (-13). Only -1 outcomes count as failures for the rate limit: a client
with a skewed clock (-16) or a new address (-2) is not locked out.

The Api-Key travels in clear, so anyone who saw it can send bad signatures with it. A lock
per key alone would let them lock its owner out from everywhere (issue 14 item 7: 104 bad
signatures from 4 addresses did). So failures lock, for ``auth_fail_window_seconds``: the
failing address (``auth_fail_limit_ip``, IPv6 by /64) and the key from that address
(``auth_fail_limit_key_ip``). The key-wide limit (``auth_fail_limit_key``) stays for a
distributed attack on one key, with a threshold far above what a few addresses reach, and a
warning in the log when it locks: its lock hurts the owner, so an operator must hear of it.

Handlers take the caller through :func:`authenticated`: the SMS and voice routes share the
one :class:`Authenticator` that ``routes.mount`` builds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request, Response

from simgate.api.auth import FailureLimiter, TtlCache, address_key
from simgate.api.dialects.itnio.envelope import ItnioError
from simgate.api.dialects.itnio.settings import ItnioSettings
from simgate.api.http import client_ip
from simgate.domain.accounts import Account, ApiKey
from simgate.errors import ConfigError, StoreError
from simgate.services.container import Services
from simgate.services.itnio import Credentials

_HEX32 = re.compile(r"\A[0-9a-fA-F]{32}\Z")
# Api-Keys cached; failure records are bounded by api.auth's default (each keeps up to the
# limit's count of times, so fewer of them fit in the same memory).
MAX_CACHED_KEYS = 100_000


def sign(api_key: str, secret: str, timestamp: str) -> str:
    """The vendor's signature (spec §1.1 worked example is a unit test)."""
    data = (api_key + secret + timestamp).encode("utf-8")
    return hashlib.md5(data).hexdigest()  # noqa: S324 - the vendor's scheme, not our choice


def timestamp_ms(timestamp: str) -> int:
    value = int(timestamp)
    return value * 1000 if len(timestamp) == 10 else value


@dataclass(frozen=True, slots=True)
class AuthContext:
    key: ApiKey
    account: Account
    client_ip: str
    timestamp: str
    sign: str


class Authenticator:
    def __init__(self, services: Services, cfg: ItnioSettings) -> None:
        self._services = services
        self._cfg = cfg
        self._trusted = services.settings.http.trusted_proxies
        clock = services.clock
        window = cfg.auth_fail_window_seconds
        self._by_ip: FailureLimiter[str] = FailureLimiter(
            clock, limit=cfg.auth_fail_limit_ip, window_s=window
        )
        self._by_pair: FailureLimiter[tuple[str, str]] = FailureLimiter(
            clock, limit=cfg.auth_fail_limit_key_ip, window_s=window
        )
        self._by_key: FailureLimiter[str] = FailureLimiter(
            clock, limit=cfg.auth_fail_limit_key, window_s=window, alert="Api-Key"
        )
        self._cache: TtlCache[str, Credentials | None] = TtlCache(
            clock,
            ttl_s=cfg.auth_cache_seconds,
            max_entries=MAX_CACHED_KEYS,
            epoch=services.accounts.epoch,
        )

    def table_sizes(self) -> dict[str, int]:
        """Entries per in-memory table (benchmarks and tests watch them stay bounded)."""
        return {
            "fail_addresses": len(self._by_ip),
            "fail_key_address": len(self._by_pair),
            "fail_keys": len(self._by_key),
            "credentials": len(self._cache),
        }

    async def _lookup(self, key: str) -> Credentials | None:
        return await self._cache.get_or_load(key, lambda: self._services.itnio.credentials(key))

    async def __call__(self, request: Request) -> AuthContext:
        ip = client_ip(request, self._trusted)
        where = address_key(ip)
        if self._by_ip.blocked(where):
            raise ItnioError(-15, "too many failed authentications from this address")
        key, ts, given = _signed_headers(request)
        if key and self._by_pair.blocked((key, where)):
            raise ItnioError(-15, "too many failed authentications for this key from here")
        if key and self._by_key.blocked(key):
            raise ItnioError(-15, "too many failed authentications for this key")
        if not key or len(key) > 64 or not ts or not given:
            raise self._refuse(ip, where, key, "Api-Key, Timestamp and Sign headers are required")
        if not _is_timestamp(ts):
            raise self._refuse(ip, where, key, "Timestamp must be 10 or 13 digits")
        if not _HEX32.match(given):
            raise self._refuse(ip, where, key, "Sign must be 32 hex digits")
        try:
            found = await self._lookup(key)
        except (StoreError, ConfigError, OSError):
            # The database (or the master key) failed us: the vendor's "system exception".
            raise ItnioError(-18) from None
        if found is None or found.key.revoked:
            raise self._refuse(ip, where, key, "unknown or revoked Api-Key")
        api_key, account = found.key, found.account
        given = given.lower()  # "case insensitive" (spec §1.1)
        # Both are ASCII (hexdigest; Sign matched _HEX32): compared as str, in constant time.
        if not hmac.compare_digest(sign(api_key.key, api_key.secret, ts), given):
            raise self._refuse(ip, where, key, "Sign does not match")
        skew = abs(self._services.clock.now_ms() - timestamp_ms(ts))
        if skew > self._cfg.timestamp_window_seconds * 1000:
            raise ItnioError(-16)
        if not api_key.allows(ip):
            raise ItnioError(-2)
        if account.locked:
            raise ItnioError(-13)
        return AuthContext(api_key, account, ip, ts, given)

    def _refuse(self, ip: str, where: str, key: str, detail: str) -> ItnioError:
        """A -1 refusal, counted against the address and the key (module docstring). A
        method, not a closure made on every request (issue 15)."""
        if ip:
            self._by_ip.fail(where)
        if key and len(key) <= 64:
            self._by_pair.fail((key, where))
            self._by_key.fail(key)
        return ItnioError(-1, detail)


def _is_timestamp(ts: str) -> bool:
    """Exactly 10 or 13 ASCII digits (which also blocks MD5 length-extension forgeries), as
    the full match of ``[0-9]{10}|[0-9]{13}`` was, without running a regex per request."""
    return (len(ts) == 10 or len(ts) == 13) and ts.isascii() and ts.isdigit()


def _signed_headers(request: Request) -> tuple[str, str, str]:
    """Api-Key, Timestamp (stripped) and Sign (stripped), each its first copy or "".

    One pass over the raw headers (ASGI names them in lower case) instead of three
    ``request.headers.get``, which each build the key and scan them all again."""
    found: dict[bytes, bytes] = {}
    for name, value in request.scope["headers"]:
        if name in _SIGNED and name not in found:
            found[name] = value
    return (
        found.get(b"api-key", b"").decode("latin-1"),
        found.get(b"timestamp", b"").decode("latin-1").strip(),
        found.get(b"sign", b"").decode("latin-1").strip(),
    )


_SIGNED = frozenset((b"api-key", b"timestamp", b"sign"))

Handler = Callable[[Request, AuthContext], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def authenticated(auth: Authenticator, handler: Handler) -> Endpoint:
    """A route for ``handler`` that receives the caller ``auth`` admitted.

    ``auth`` is called here, not as a FastAPI dependency: solving a dependency (its cache
    key, the request's query parameters and cookies) cost more than the authentication
    itself on every request (issue 15). Its refusal (an ItnioError) reaches the app's
    exception handler the same way, and the route's schema is the same."""

    async def endpoint(request: Request) -> Response:
        return await handler(request, await auth(request))

    return endpoint
