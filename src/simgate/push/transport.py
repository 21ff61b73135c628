"""The HTTP connections for pushes: keep-alive, no redirects, no proxies, SSRF-checked connects.

The sender's lanes hold bare pools (:func:`make_pool`; push/wire.py sends on them);
:func:`make_client` wraps the same pool in an httpx client for everything else.

httpx resolves and connects inside httpcore's network backend. We replace that backend with
one that resolves through :class:`~simgate.push.ssrf.UrlGuard`, refuses blocked addresses,
and connects to the *checked address* itself, so nothing resolves the name a second time
(DNS rebinding, issue #3). TLS still verifies the certificate against the URL's host name:
httpcore passes the origin host as ``server_hostname`` to ``start_tls`` separately.

The pool is rebuilt with our backend after ``AsyncHTTPTransport.__init__`` (httpx 0.28 has no
public ``network_backend`` argument; httpx and httpcore are pinned in pyproject).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from simgate.push.settings import PushSettings
from simgate.push.ssrf import ResolveError, UrlGuard

SocketOption = Any


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, guard: UrlGuard, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._guard = guard
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addrs = await self._guard.connect_addresses(host, port)  # UnsafeUrl propagates
        except ResolveError as exc:
            raise httpcore.ConnectError(str(exc)) from None
        last: Exception | None = None
        for addr in addrs:
            try:
                return await self._inner.connect_tcp(
                    str(addr),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("pushes never use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


KEEPALIVE_EXPIRY_S = 30.0


def make_pool(
    guard: UrlGuard,
    *,
    ssl_context: ssl.SSLContext,
    keepalive: int | None,
    max_connections: int | None,
) -> httpcore.AsyncConnectionPool:
    """An HTTP/1.1 pool whose connections go through the guard (push/wire.py sends on it)."""
    return httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=max_connections,
        max_keepalive_connections=keepalive,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
        http1=True,
        http2=False,
        network_backend=GuardedBackend(guard),
    )


class GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(
        self, guard: UrlGuard, *, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        ctx = ssl_context or httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=ctx, trust_env=False, limits=limits)  # loads no CA file again
        self._pool = make_pool(
            guard,
            ssl_context=ctx,
            keepalive=limits.max_keepalive_connections,
            max_connections=limits.max_connections,
        )


def make_client(
    guard: UrlGuard,
    cfg: PushSettings,
    *,
    ssl_context: ssl.SSLContext | None = None,
    keepalive: int = 64,
) -> httpx.AsyncClient:
    # Concurrency is bounded by the sender (push/lanes.py); the pool must not add a global
    # cap, or a hanging receiver could hold every connection (issue #3).
    limits = httpx.Limits(
        max_connections=None,
        max_keepalive_connections=keepalive,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )
    return httpx.AsyncClient(
        transport=GuardedTransport(guard, limits=limits, ssl_context=ssl_context),
        timeout=httpx.Timeout(cfg.total_timeout_seconds, connect=cfg.connect_timeout_seconds),
        follow_redirects=False,
        trust_env=False,
    )
