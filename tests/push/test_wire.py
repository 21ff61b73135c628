"""push/wire.py: a push request on a bare httpcore pool says what httpx said, against a real
receiver (simgate.testing.push_receiver)."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import httpcore
import httpx
import pytest

from simgate.push.settings import PushSettings
from simgate.push.ssrf import UrlGuard
from simgate.push.transport import make_pool
from simgate.push.wire import USER_AGENT, BadHeader, Wire
from simgate.testing.push_receiver import Answer, PushReceiver, Received, accept, always

CFG = PushSettings(connect_timeout_seconds=2, total_timeout_seconds=5, max_response_bytes=1000)


@pytest.fixture
async def pool() -> AsyncIterator[httpcore.AsyncConnectionPool]:
    guard = UrlGuard(allow=[ipaddress.ip_network("127.0.0.1/32")])
    ctx = httpx.create_ssl_context(trust_env=False)
    p = make_pool(guard, ssl_context=ctx, keepalive=1, max_connections=None)
    try:
        yield p
    finally:
        await p.aclose()


def _header_names(request: httpcore.Request) -> list[bytes]:
    return [name.lower() for name, _ in request.headers]


async def test_a_post_carries_host_accept_agent_its_headers_and_length(
    pool: httpcore.AsyncConnectionPool,
) -> None:
    receiver = PushReceiver(always(429, {"retry-after": "30"}))
    await receiver.start()
    try:
        wire = Wire(CFG)
        request = wire.request(
            method="POST",
            url=receiver.url + "/hook?a=1",
            headers={"Content-Type": "application/json", "webhook-id": "msg_1"},
            body=b'{"x":1}',
        )
        answer = await wire.exchange(pool, request)
    finally:
        await receiver.stop()
    assert (answer.status, answer.retry_after) == (429, "30")
    (got,) = receiver.requests
    assert (got.method, got.target, got.body) == ("POST", "/hook?a=1", b'{"x":1}')
    assert got.headers == {
        "host": f"127.0.0.1:{receiver.port}",
        "accept": "*/*",
        "user-agent": USER_AGENT,
        "content-type": "application/json",
        "webhook-id": "msg_1",
        "content-length": "7",
    }


def test_length_only_where_httpx_sent_one() -> None:
    wire = Wire(CFG)
    get = wire.request(method="GET", url="http://r.example/h", headers={}, body=None)
    empty = wire.request(method="POST", url="http://r.example/h", headers={}, body=None)
    assert b"content-length" not in _header_names(get)
    assert (b"Content-Length", b"0") in empty.headers
    # The default port is not written into Host (as httpx's netloc).
    assert (b"Host", b"r.example") in get.headers


def test_the_pushs_own_headers_replace_the_defaults_once() -> None:
    wire = Wire(CFG)
    request = wire.request(
        method="POST",
        url="http://r.example/h",
        headers={"user-agent": "theirs/2", "Accept": "application/json"},
        body=b"{}",
    )
    names = _header_names(request)
    assert names.count(b"user-agent") == 1
    assert names.count(b"accept") == 1
    assert (b"user-agent", b"theirs/2") in request.headers


def test_an_international_host_goes_out_in_idna() -> None:
    request = Wire(CFG).request(
        method="POST", url="http://bücher.example:8080/hook", headers={}, body=b"{}"
    )
    assert (b"Host", b"xn--bcher-kva.example:8080") in request.headers
    assert request.url.host == b"xn--bcher-kva.example"


def test_a_header_that_is_not_ascii_cannot_be_sent() -> None:
    with pytest.raises(BadHeader):
        Wire(CFG).request(
            method="POST", url="http://r.example/h", headers={"X-Name": "Zoë"}, body=b"{}"
        )


async def test_a_long_answer_is_cut_and_the_lane_still_works(
    pool: httpcore.AsyncConnectionPool,
) -> None:
    """Past max_response_bytes the answer is dropped with its connection; the next push on
    the same lane opens a new one."""
    answers = iter([Answer(body=b"x" * 50_000), Answer()])

    async def behaviour(_: Received) -> Answer:
        return next(answers)

    receiver = PushReceiver(behaviour)
    await receiver.start()
    try:
        wire = Wire(CFG)
        first = await wire.exchange(
            pool, wire.request(method="POST", url=receiver.url, headers={}, body=b"1")
        )
        second = await wire.exchange(
            pool, wire.request(method="POST", url=receiver.url, headers={}, body=b"2")
        )
    finally:
        await receiver.stop()
    assert (first.status, second.status) == (200, 200)
    assert [r.body for r in receiver.requests] == [b"1", b"2"]


async def test_keep_alive_reuses_one_connection(pool: httpcore.AsyncConnectionPool) -> None:
    receiver = PushReceiver(accept)
    await receiver.start()
    try:
        wire = Wire(CFG)
        for i in range(3):
            request = wire.request(method="POST", url=receiver.url, headers={}, body=b"%d" % i)
            assert (await wire.exchange(pool, request)).status == 200
        connections = len(pool.connections)
    finally:
        await receiver.stop()
    assert connections == 1
    assert len(receiver.requests) == 3
