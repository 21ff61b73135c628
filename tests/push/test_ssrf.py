"""SSRF guard: a corpus of hostile push URLs is refused, public ones pass (issue #3)."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from simgate.push.settings import PushSettings
from simgate.push.ssrf import (
    ResolveError,
    UnsafeUrl,
    UrlGuard,
    blocked_reason,
    host_literal,
    parse_url,
)
from simgate.push.transport import make_client


class FakeResolver:
    """Names → addresses, no network; counts lookups (to see that connect re-resolves)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.table:
            raise ResolveError(f"cannot resolve {host}")
        return self.table[host]


NAMES = {
    "internal.example.com": ["10.0.0.1"],
    "mixed.example.com": ["93.184.215.14", "192.168.1.5"],
    "meta.example.com": ["169.254.169.254"],
    "v6loop.example.com": ["::1"],
    "mapped.example.com": ["::ffff:10.1.2.3"],
    "public.example.com": ["93.184.215.14"],
    "public6.example.com": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "hooks.example.org": ["203.0.114.10", "2001:4860:4860::8888"],
}

HOSTILE = [
    # numeric spellings of loopback (inet_aton forms)
    "http://2130706433/",
    "http://0x7f.1/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://0x7f000001/",
    "http://017700000001/",
    "http://127.0.1/",
    "http://0/",
    "http://1.2.3.0x4/",  # even a public address in hex spelling
    "http://example.123/",  # numeric last label (WHATWG treats it as IPv4)
    # loopback, private, link-local, CGNAT, multicast, reserved, unspecified
    "http://127.0.0.1/",
    "http://127.8.9.10:8080/hook",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://0.0.0.0/",
    "http://198.18.0.1/",
    "http://192.0.0.8/",
    # IPv6: loopback, unspecified, link-local, unique-local, multicast, site-local
    "http://[::1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://[ff02::1]/",
    "http://[fec0::1]/",
    # IPv4 wrapped in IPv6: mapped, compatible, NAT64, 6to4, Teredo
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::127.0.0.1]/",
    "http://[64:ff9b::10.0.0.1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[64:ff9b:1::a00:1]/",
    "http://[2002:7f00:1::]/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo client 127.0.0.1
    # names
    "http://localhost/",
    "http://LOCALHOST:8080/",
    "http://api.localhost/",
    "http://internal.example.com/",
    "http://mixed.example.com/",
    "http://meta.example.com/",
    "http://v6loop.example.com/",
    "http://mapped.example.com/",
    "http://does-not-resolve.example.net/",
    # schemes, userinfo, encodings, malformed
    "ftp://public.example.com/",
    "file:///etc/passwd",
    "gopher://public.example.com:70/",
    "javascript:alert(1)",
    "//public.example.com/",
    "http://user:pw@public.example.com/",
    "http://public.example.com@127.0.0.1/",
    "http://127.0.0.1#@public.example.com/",
    "http://public.example.com\\@127.0.0.1/",
    "http://%31%32%37.0.0.1/",
    "http://[fe80::1%25eth0]/",
    "http://public.example.com:0/",
    "http://public.example.com:99999/",
    "http:// public.example.com/",
    "http://public.example.com/\r\nX-Injected: 1",
    "http:///path-only",
    "http://１２７。０。０。１/",  # full-width digits and ideographic dots
    "http://" + "a" * 2100 + ".com/",
]

PUBLIC = [
    "http://public.example.com/hook",
    "https://public.example.com:8443/a/b?c=d",
    "https://public6.example.com/",
    "http://93.184.215.14/report",
    "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/x",
    "https://hooks.example.org/sms?x=1",
    "HTTPS://Public.Example.COM./caps",
]


def guard(*allow: str) -> UrlGuard:
    nets = [ipaddress.ip_network(a) for a in allow]
    return UrlGuard(allow=nets, resolver=FakeResolver(NAMES))


def test_corpus_is_large_enough() -> None:
    assert len(HOSTILE) >= 30
    assert len(set(HOSTILE)) == len(HOSTILE)


@pytest.mark.parametrize("url", HOSTILE)
async def test_hostile_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        await guard().check(url)


@pytest.mark.parametrize("url", PUBLIC)
async def test_public_urls_are_allowed(url: str) -> None:
    addrs = await guard().check(url)
    assert addrs
    assert all(blocked_reason(a) is None for a in addrs)


async def test_allow_list_lets_an_operator_receiver_through() -> None:
    g = guard("127.0.0.1/32", "10.0.0.0/8")
    assert [str(a) for a in await g.check("http://127.0.0.1:9000/hook")] == ["127.0.0.1"]
    assert [str(a) for a in await g.check("http://internal.example.com/")] == ["10.0.0.1"]
    assert [str(a) for a in await g.check("http://[::ffff:127.0.0.1]/")] == ["::ffff:7f00:1"]
    # ...but only what it lists, and never the odd spellings
    for url in ("http://127.0.0.2/", "http://192.168.0.1/", "http://2130706433/", "http://127.1/"):
        with pytest.raises(UnsafeUrl):
            await g.check(url)


def test_pure_parts_need_no_resolver() -> None:
    t = parse_url("HTTPS://Hooks.Example.org:8443/p?q")
    assert (t.scheme, t.host, t.port, t.literal) == ("https", "hooks.example.org", 8443, None)
    assert t.endpoint == "https://hooks.example.org:8443"
    assert parse_url("http://[2001:db8::1]/").endpoint == "http://[2001:db8::1]:80"
    assert host_literal("93.184.215.14") == ipaddress.ip_address("93.184.215.14")
    assert host_literal("example.com") is None
    for spelled in ("2130706433", "0x7f.1", "0177.0.0.1", "127.1", "1.2.3.04"):
        with pytest.raises(UnsafeUrl):
            host_literal(spelled)
    assert blocked_reason(ipaddress.ip_address("100.64.0.1")) == "100.64.0.1 is shared (CGNAT)"
    assert "wraps" in (blocked_reason(ipaddress.ip_address("64:ff9b::a00:1")) or "")
    assert blocked_reason(ipaddress.ip_address("64:ff9b::5db8:d70e")) is None  # NAT64 of public


async def test_connect_time_check_refuses_a_rebound_name() -> None:
    """The name was public when configured; at connect time it resolves to 10.0.0.1."""
    resolver = FakeResolver(dict(NAMES))
    g = UrlGuard(resolver=resolver)
    resolver.table["rebind.example.com"] = ["93.184.215.14"]
    await g.check("http://rebind.example.com/hook")  # configuration time: fine
    resolver.table["rebind.example.com"] = ["10.0.0.1"]  # the attacker's DNS flips
    client = make_client(g, PushSettings())
    try:
        with pytest.raises(UnsafeUrl, match=r"10\.0\.0\.1"):
            await client.post("http://rebind.example.com/hook", content=b"{}")
    finally:
        await client.aclose()
    assert resolver.lookups.count("rebind.example.com") == 2  # resolved again at connect


async def test_connect_goes_to_the_checked_address() -> None:
    """The transport connects to the address the guard approved, not to a second lookup."""
    resolver = FakeResolver({"receiver.test": ["127.0.0.1"]})
    g = UrlGuard(allow=[ipaddress.ip_network("127.0.0.1/32")], resolver=resolver)
    client = make_client(g, PushSettings(connect_timeout_seconds=1, total_timeout_seconds=2))
    try:
        # Nothing listens on port 9 (discard) here: the error proves a connect to 127.0.0.1
        # was attempted for a name no real DNS knows.
        with pytest.raises(httpx.ConnectError):
            await client.get("http://receiver.test:9/")
    finally:
        await client.aclose()
    assert resolver.lookups == ["receiver.test"]
