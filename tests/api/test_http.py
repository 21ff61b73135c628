"""The shared HTTP edge: capped body reading and the client address (api/http.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from starlette.requests import Request
from starlette.types import Message

from simgate.api.http import (
    BadContentLength,
    BodyRefused,
    BodyTooLarge,
    ClientGone,
    client_ip,
    declared_length,
    read_body,
    request_path,
)

TRUSTED = ("10.0.0.0/8", "192.0.2.1")


def request(
    *,
    chunks: Sequence[bytes] = (),
    headers: Sequence[tuple[str, str]] = (),
    peer: str | None = "198.51.100.9",
) -> tuple[Request, list[int]]:
    """A request whose body arrives in ``chunks``; the list counts the chunks handed out."""
    handed: list[int] = [0]
    parts = list(chunks) or [b""]

    async def receive() -> Message:
        i = handed[0]
        handed[0] += 1
        if i >= len(parts):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": parts[i], "more_body": i < len(parts) - 1}

    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": (peer, 40000) if peer is not None else None,
        "state": {},
    }
    return Request(scope, receive), handed


# ---- read_body ------------------------------------------------------------------------
async def test_body_within_the_limit_is_read_whole() -> None:
    req, _ = request(chunks=[b"ab", b"cd"], headers=[("content-length", "4")])
    assert await read_body(req, 4) == b"abcd"


async def test_a_second_read_returns_the_same_bytes() -> None:
    req, _ = request(chunks=[b"hello"])
    assert await read_body(req, 100) == b"hello"
    assert await read_body(req, 100) == b"hello"
    with pytest.raises(BodyTooLarge):
        await read_body(req, 3)  # a smaller cap still holds for the cached body


async def test_another_request_object_over_a_copied_scope_reads_the_same_bytes() -> None:
    """A router may hand the handler a copy of the scope: the body is kept with the state
    the copies share, so the stream (spent) is not read again."""
    req, handed = request(chunks=[b"hello"])
    assert await read_body(req, 100) == b"hello"
    again = Request(dict(req.scope), req.receive)
    assert await read_body(again, 100) == b"hello"
    assert handed[0] == 1


async def test_declared_length_over_the_cap_is_refused_before_reading() -> None:
    req, handed = request(chunks=[b"x" * 10], headers=[("content-length", "10")])
    with pytest.raises(BodyTooLarge) as info:
        await read_body(req, 9)
    assert handed[0] == 0
    assert info.value.limit == 9
    assert "9 bytes" in str(info.value)


@pytest.mark.parametrize("value", ["9" * 5000, "1" + "0" * 30, "99999999999999999999"])
async def test_a_huge_declared_length_is_too_large_not_an_error(value: str) -> None:
    req, handed = request(chunks=[b"x"], headers=[("content-length", value)])
    with pytest.raises(BodyTooLarge):
        await read_body(req, 1 << 20)
    assert handed[0] == 0


@pytest.mark.parametrize(
    "value", ["-1", "abc", "1e3", " ", "", "0x10", "²", "\xb9\xb2", "+5", "1.0"]
)
async def test_a_non_numeric_or_negative_length_is_a_bad_length(value: str) -> None:
    req, handed = request(chunks=[b"x"], headers=[("content-length", value)])
    with pytest.raises(BadContentLength):
        await read_body(req, 100)
    assert handed[0] == 0


async def test_conflicting_length_headers_are_a_bad_length() -> None:
    req, _ = request(chunks=[b"x"], headers=[("content-length", "1"), ("content-length", "2")])
    with pytest.raises(BadContentLength):
        declared_length(req)
    same, _ = request(chunks=[b"x"], headers=[("content-length", "1"), ("content-length", "1")])
    assert declared_length(same) == 1


async def test_a_streamed_body_without_length_stops_at_the_cap() -> None:
    req, handed = request(chunks=[b"x" * 400] * 100)
    with pytest.raises(BodyTooLarge):
        await read_body(req, 1000)
    assert handed[0] == 3  # stopped at the chunk that went past the cap, not after 100


async def test_a_body_longer_than_its_declared_length_is_still_capped() -> None:
    req, handed = request(chunks=[b"x" * 600] * 10, headers=[("content-length", "5")])
    with pytest.raises(BodyTooLarge):
        await read_body(req, 1000)
    assert handed[0] == 2


def test_every_refusal_is_one_exception_type() -> None:
    assert issubclass(BodyTooLarge, BodyRefused)
    assert issubclass(BadContentLength, BodyRefused)


# ---- request_path ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/sms/send",
        "/a?b",
        "/a#b",
        "/a\\b",
        "//x",
        "/%41 b",
        "/ünï",
        "/",
        "/smsoutbox/x/../y",
        "/t\tr\rn\n",
    ],
)
@pytest.mark.parametrize("host", [b"gw.example:8080", None])
def test_request_path_is_starlette_s_url_path(path: str, host: bytes | None) -> None:
    headers = [(b"host", host)] if host is not None else []
    scope = {"type": "http", "path": path, "headers": headers, "server": ("10.0.0.1", 80)}
    req = Request(scope)
    assert request_path(req) == req.url.path


# ---- client_ip ------------------------------------------------------------------------
def ip(peer: str | None, *xff: str, trusted: tuple[str, ...] = TRUSTED) -> str:
    req, _ = request(headers=[("x-forwarded-for", v) for v in xff], peer=peer)
    return client_ip(req, trusted)


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert ip("10.1.2.3", "203.0.113.7", trusted=()) == "10.1.2.3"


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    assert ip("198.51.100.9", "203.0.113.7") == "198.51.100.9"
    assert ip("198.51.100.9", "10.0.0.1, 192.0.2.1") == "198.51.100.9"


def test_behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() -> None:
    # A forged leftmost hop does not matter: the client's own address is the nearest one.
    assert ip("10.0.0.2", "1.1.1.1, 203.0.113.7, 10.0.0.5") == "203.0.113.7"
    assert ip("192.0.2.1", "203.0.113.7") == "203.0.113.7"


def test_every_forwarded_for_header_counts_in_order() -> None:
    assert ip("10.0.0.2", "203.0.113.7", "198.51.100.1, 10.0.0.9") == "198.51.100.1"
    assert ip("10.0.0.2", "203.0.113.7, ", " , 10.0.0.9") == "203.0.113.7"


def test_all_hops_trusted_gives_the_leftmost_hop() -> None:
    assert ip("10.0.0.2", "10.0.0.7, 192.0.2.1") == "10.0.0.7"


def test_a_trusted_peer_without_forwarded_for_is_the_client() -> None:
    assert ip("10.0.0.2") == "10.0.0.2"
    assert ip("10.0.0.2", " , ") == "10.0.0.2"


def test_garbage_hops_are_untrusted_addresses() -> None:
    assert ip("10.0.0.2", "unknown, 10.0.0.3") == "unknown"


def test_no_peer_at_all_is_an_empty_address() -> None:
    assert ip(None, "203.0.113.7") == ""


async def test_a_client_gone_mid_body_is_client_gone_for_every_reader() -> None:
    req, handed = request(chunks=[b"abc", b"de"])
    req_scope_receive = req.receive

    async def cut() -> Message:
        message = await req_scope_receive()
        # The second chunk never comes: the client hung up after the first.
        return message if handed[0] == 1 else {"type": "http.disconnect"}

    gone = Request(req.scope, cut)
    with pytest.raises(ClientGone) as first:
        await read_body(gone, 100)
    assert first.value.received == 3
    with pytest.raises(ClientGone):  # a second reader: the stream is spent, the client gone
        await read_body(Request(req.scope, cut), 100)
    assert await gone.is_disconnected()
