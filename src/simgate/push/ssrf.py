"""SSRF guard for push URLs (issue #3, design principle 5).

Pushes go to URLs that customers type in, so a push must never reach the gateway's own
network: loopback, private, link-local (cloud metadata at 169.254.169.254), CGNAT
(100.64/10), multicast, reserved or unspecified addresses, nor those same addresses wrapped
in IPv6 (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, NAT64
``64:ff9b::/96`` and ``64:ff9b:1::/48``, 6to4 ``2002::/16``, Teredo ``2001::/32``).

The guard works twice: when a URL is configured (:meth:`UrlGuard.check`) and again at
connect time on the addresses DNS actually returned (:meth:`UrlGuard.connect_addresses`,
used by :mod:`simgate.push.transport`, which then connects to that checked address), so a
name that re-resolves to a private address later (DNS rebinding) is still refused.

The pure part (:func:`parse_url`, :func:`host_literal`, :func:`blocked_reason`) needs no
network; the resolver is a seam (:class:`Resolver`) that tests replace.

Host spellings that only legacy ``inet_aton`` parsers understand (``2130706433``,
``0x7f.1``, ``0177.0.0.1``, ``127.1``) are refused outright, whatever they point at:
different libraries read them differently, which is exactly what an attacker exploits.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from simgate.errors import InvalidInput

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# Special-purpose blocks (IANA registries), listed here as well because Python's own
# ``is_global`` tables differ between patch releases.
_SPECIAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
        "100::/64",
        "2001:db8::/32",
    )
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_CANONICAL_V4 = re.compile(
    r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$"
)
MAX_URL = 2048


class UnsafeUrl(InvalidInput):
    """The push URL is malformed or reaches an address pushes may not go to."""


class ResolveError(Exception):
    """The name did not resolve (now): a push retries, a configuration is refused."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str  # lower-case ASCII (IDNA), no brackets
    port: int
    literal: IpAddress | None  # set when the host is an IP address

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_url(url: str) -> Target:
    """Check a push URL's shape; no network. Raises :class:`UnsafeUrl` with the reason."""
    if len(url) > MAX_URL:
        raise UnsafeUrl(f"push URL longer than {MAX_URL} characters")
    if _BAD_CHARS.search(url):
        raise UnsafeUrl("push URL contains spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"push URL is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeUrl("push URL scheme must be http or https")
    if "@" in parts.netloc:
        raise UnsafeUrl("push URL must not carry user information (user:password@)")
    raw = parts.hostname or ""
    if not raw:
        raise UnsafeUrl("push URL has no host")
    if "%" in raw:
        raise UnsafeUrl("push URL host must not be percent-encoded or carry a zone id")
    bracketed = parts.netloc.split("@")[-1].startswith("[")
    if port == 0:
        raise UnsafeUrl("push URL port 0 is not usable")
    host, literal = _host(raw, bracketed=bracketed)
    return Target(scheme, host, port or (443 if scheme == "https" else 80), literal)


def _host(raw: str, *, bracketed: bool) -> tuple[str, IpAddress | None]:
    if bracketed:
        try:
            return raw, ipaddress.IPv6Address(raw)
        except ValueError:
            raise UnsafeUrl(f"push URL host [{raw}] is not an IPv6 address") from None
    try:
        # IDNA folds full-width digits and dots (１２７。０。０。１) into ASCII first.
        host = raw.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UnsafeUrl("push URL host is not a valid domain name") from None
    host = host.rstrip(".") if host.endswith(".") and not host.endswith("..") else host
    if not host or ".." in host or host.startswith("."):
        raise UnsafeUrl("push URL host is not a valid domain name")
    return host, host_literal(host)


def host_literal(host: str) -> IpAddress | None:
    """The address a dotted-decimal host names; None for a name.

    Raises for numeric spellings other than canonical dotted decimal (decimal, octal, hex,
    short forms) and for names whose last label is numeric (WHATWG URL treats those as IPv4).
    """
    if _CANONICAL_V4.match(host):
        return ipaddress.IPv4Address(host)
    labels = host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        raise UnsafeUrl(
            f"push URL host {host!r} is an address in a non-standard spelling; "
            "write it as a name or as dotted decimal"
        )
    if ":" in host:
        raise UnsafeUrl("an IPv6 push URL host needs brackets")
    if host == "localhost" or host.endswith(".localhost"):
        raise UnsafeUrl("push URL host is localhost")  # RFC 6761 §6.3: always loopback
    return None


def embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address wraps (mapped, compatible, NAT64, 6to4, Teredo)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's (obfuscated-back) address
    if int(ip) >> 32 == 0 and int(ip) > 1:  # IPv4-compatible ::a.b.c.d (deprecated)
        return ipaddress.IPv4Address(int(ip))
    return None


def blocked_reason(ip: IpAddress, allow: Sequence[IpNetwork] = ()) -> str | None:
    """Why a push may not go to ``ip``; None when it may. ``allow`` wins (operator's LAN)."""
    if _allowed(ip, allow):
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_v4(ip)
        if inner is not None:
            if ip.ipv4_mapped is not None or int(ip) >> 32 == 0:
                # Mapped/compatible forms are how filters get bypassed: refuse them always
                # unless the operator allowed the IPv4 address they carry.
                return None if _allowed(inner, allow) else f"{ip} wraps {inner}"
            why = blocked_reason(inner, allow)
            if why is not None:
                return f"{ip} wraps {inner} ({why})"
            if any(ip in net for net in _NAT64):
                return None  # NAT64 of a public address is that public address
    checks = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "shared (CGNAT)"),
        (ip.is_private, "private"),
        (ip.is_reserved or any(_within(ip, n) for n in _SPECIAL), "reserved"),
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "site-local"),
        (not ip.is_global, "not globally routable"),
    )
    for hit, name in checks:
        if hit:
            return f"{ip} is {name}"
    return None


def _within(ip: IpAddress, net: IpNetwork) -> bool:
    return ip.version == net.version and ip in net


def _allowed(ip: IpAddress, allow: Sequence[IpNetwork]) -> bool:
    return any(ip.version == net.version and ip in net for net in allow)


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]:
        """Addresses for ``host`` (raises :class:`ResolveError`)."""


class SystemResolver:
    async def resolve(self, host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise ResolveError(f"cannot resolve {host}: {exc}") from None
        out: list[str] = []
        for *_, sockaddr in infos:
            addr = str(sockaddr[0])
            if addr not in out:
                out.append(addr)
        return out


class UrlGuard:
    """The SSRF policy: static checks, resolution, address checks; ``enforce=False`` = off."""

    def __init__(
        self,
        *,
        allow: Sequence[IpNetwork] = (),
        resolver: Resolver | None = None,
        enforce: bool = True,
    ) -> None:
        self.allow = tuple(allow)
        self.resolver: Resolver = resolver or SystemResolver()
        self.enforce = enforce

    def check_static(self, url: str) -> Target:
        target = parse_url(url)
        if self.enforce and target.literal is not None:
            why = blocked_reason(target.literal, self.allow)
            if why is not None:
                raise UnsafeUrl(f"push URL refused: {why}")
        return target

    async def check(self, url: str) -> list[IpAddress]:
        """Refuse a URL when it is configured; resolution failures refuse too."""
        target = self.check_static(url)
        try:
            return await self.connect_addresses(target.host, target.port)
        except ResolveError as exc:
            raise UnsafeUrl(f"push URL refused: {exc}") from None

    async def connect_addresses(self, host: str, port: int) -> list[IpAddress]:
        """The checked addresses to connect to; every resolved address must pass."""
        literal = _literal(host)
        if literal is not None:
            addrs: list[IpAddress] = [literal]
        else:
            if self.enforce:
                host_literal(host)
            raw = await self.resolver.resolve(host, port)
            addrs = [a for a in (_literal(r.split("%")[0]) for r in raw) if a is not None]
            if not addrs:
                raise ResolveError(f"{host} has no addresses")
        if self.enforce:
            for addr in addrs:
                why = blocked_reason(addr, self.allow)
                if why is not None:
                    raise UnsafeUrl(f"push target {host} refused: {why}")
        return addrs


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
