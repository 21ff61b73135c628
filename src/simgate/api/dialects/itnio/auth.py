"""Signed-header authentication of the itniotech API (spec §1.1, §7); SMS and voice share it.

``Sign = md5(Api-Key + secret + Timestamp)``. Checks, in order: failure rate limit (-15),
headers present and well formed (-1; Timestamp exactly 10 or 13 digits, which also blocks
MD5 length-extension forgeries), key known and not revoked (-1), Sign equal in constant time
and case-insensitively (-1), Timestamp inside the window (-16), client IP allowed (-2),
account not locked (-13). Only -1 outcomes count as failures for the rate limit: a client
with a skewed clock (-16) or a new address (-2) is not locked out.

Use it from a route with ``ctx: AuthContext = Depends(itnio_auth)``; ``install(app, ...)``
(called by ``mount``) creates the one :class:`Authenticator` of the app.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from simgate.api.dialects.itnio.config import ItnioSettings
from simgate.api.dialects.itnio.envelope import ItnioError
from simgate.domain.accounts import Account, ApiKey, ip_in_any
from simgate.errors import ConfigError, StoreError
from simgate.services.container import Services

_TIMESTAMP = re.compile(r"\A(?:[0-9]{10}|[0-9]{13})\Z")
_HEX32 = re.compile(r"\A[0-9a-fA-F]{32}\Z")
_MAX_TRACKED = 100_000


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


def client_ip(request: Request, trusted: tuple[str, ...]) -> str:
    """The TCP peer, or the nearest untrusted X-Forwarded-For hop behind trusted proxies."""
    peer = request.client.host if request.client else ""
    if not trusted or not ip_in_any(peer, trusted):
        return peer
    hops = [
        hop.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not ip_in_any(hop, trusted):
            return hop
    return hops[0] if hops else peer


class FailureLimiter:
    """Sliding-window count of failed authentications per IP and per key (this process)."""

    def __init__(self, *, window_s: float, limit_ip: int, limit_key: int) -> None:
        self._window = window_s
        self._limits = {"ip": limit_ip, "key": limit_key}
        self._seen: dict[tuple[str, str], collections.deque[float]] = {}

    def _recent(self, kind: str, who: str, now: float) -> collections.deque[float]:
        q = self._seen.get((kind, who))
        if q is None:
            return collections.deque()
        while q and q[0] <= now - self._window:
            q.popleft()
        if not q:
            del self._seen[(kind, who)]
        return q

    def blocked(self, kind: str, who: str) -> bool:
        return len(self._recent(kind, who, time.monotonic())) >= self._limits[kind]

    def fail(self, *, ip: str, key: str) -> None:
        now = time.monotonic()
        if len(self._seen) > _MAX_TRACKED:  # bounded memory under a flood of new names
            self._seen.clear()
        for kind, who in (("ip", ip), ("key", key)):
            if who:
                self._recent(kind, who, now)
                self._seen.setdefault((kind, who), collections.deque()).append(now)


class Authenticator:
    def __init__(self, services: Services, cfg: ItnioSettings) -> None:
        self._services = services
        self._cfg = cfg
        self._trusted = services.settings.http.trusted_proxies
        self._limiter = FailureLimiter(
            window_s=cfg.auth_fail_window_seconds,
            limit_ip=cfg.auth_fail_limit_ip,
            limit_key=cfg.auth_fail_limit_key,
        )
        self._cache: dict[str, tuple[float, ApiKey | None, Account | None]] = {}

    async def _lookup(self, key: str) -> tuple[ApiKey | None, Account | None]:
        ttl = self._cfg.auth_cache_seconds
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        store = self._services.store
        async with store.db.read() as conn:
            api_key = await store.accounts.get_key(conn, key)
            account = (
                await store.accounts.get_account(conn, api_key.account_id) if api_key else None
            )
        if ttl > 0:
            if len(self._cache) > _MAX_TRACKED:
                self._cache.clear()
            self._cache[key] = (now + ttl, api_key, account)
        return api_key, account

    async def __call__(self, request: Request) -> AuthContext:
        ip = client_ip(request, self._trusted)
        if self._limiter.blocked("ip", ip):
            raise ItnioError(-15, "too many failed authentications from this address")
        headers = request.headers
        key = headers.get("api-key", "")
        ts = headers.get("timestamp", "").strip()
        given = headers.get("sign", "").strip()
        if key and self._limiter.blocked("key", key):
            raise ItnioError(-15, "too many failed authentications for this key")

        def refuse(detail: str) -> ItnioError:
            self._limiter.fail(ip=ip, key=key if len(key) <= 64 else "")
            return ItnioError(-1, detail)

        if not key or len(key) > 64 or not ts or not given:
            raise refuse("Api-Key, Timestamp and Sign headers are required")
        if not _TIMESTAMP.match(ts):
            raise refuse("Timestamp must be 10 or 13 digits")
        if not _HEX32.match(given):
            raise refuse("Sign must be 32 hex digits")
        try:
            api_key, account = await self._lookup(key)
        except (StoreError, ConfigError, OSError):
            # The database (or the master key) failed us: the vendor's "system exception".
            raise ItnioError(-18) from None
        if api_key is None or account is None or api_key.revoked:
            raise refuse("unknown or revoked Api-Key")
        expected = sign(api_key.key, api_key.secret, ts)
        if not hmac.compare_digest(expected.encode(), given.lower().encode()):
            raise refuse("Sign does not match")
        skew = abs(self._services.clock.now_ms() - timestamp_ms(ts))
        if skew > self._cfg.timestamp_window_seconds * 1000:
            raise ItnioError(-16)
        if not api_key.allows(ip):
            raise ItnioError(-2)
        if account.locked:
            raise ItnioError(-13)
        return AuthContext(api_key, account, ip, ts, given.lower())


def install(app: FastAPI, services: Services, cfg: ItnioSettings) -> Authenticator:
    """The app's one Authenticator (SMS and voice routers share its cache and limits)."""
    existing = getattr(app.state, "itnio_auth", None)
    if isinstance(existing, Authenticator):
        return existing
    auth = Authenticator(services, cfg)
    app.state.itnio_auth = auth
    return auth


async def itnio_auth(request: Request) -> AuthContext:
    """FastAPI dependency: the authenticated caller, or an :class:`ItnioError`."""
    auth: Authenticator = request.app.state.itnio_auth
    return await auth(request)


# Route parameter type: ``async def handler(request: Request, ctx: Caller)``.
Caller = Annotated[AuthContext, Depends(itnio_auth)]
