"""Stalled clients against a real uvicorn server on a real socket (issue 14 item 11).

Slowloris: many connections that send part of their headers, or all headers and part of the
body, or nothing, and then wait. Each must be closed by the server (the test waits for the
end of its stream; it does not time anything), while a normal client is still answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import textwrap
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from simgate.cli.http_guard import GuardedProtocol, answer_in_one_write, guarded_protocol
from simgate.settings import HttpSettings

WAIT_S = 30.0  # a bound for "closed at all", far above the timeouts below


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the test runner keeps its signals
        yield


@contextlib.asynccontextmanager
async def server(app: Any, keep_alive_s: float = 5, **http: Any) -> AsyncIterator[int]:
    cfg = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=keep_alive_s,  # type: ignore[arg-type]
        timeout_graceful_shutdown=1,  # stalled requests must not hold the test's end
        http=guarded_protocol(HttpSettings(**http)),
    )
    srv = _Server(cfg)
    task = asyncio.create_task(srv.serve())
    for _ in range(3000):  # uvicorn sets a flag, not an event, once it listens
        if srv.started or task.done():
            break
        await asyncio.sleep(0.01)
    port: int = srv.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        srv.should_exit = True
        await task


async def stalled(port: int, first: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if first:
        writer.write(first)
        await writer.drain()
    return reader, writer


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent until it closed the connection."""
    return await asyncio.wait_for(reader.read(), WAIT_S)


async def cut_off(reader: asyncio.StreamReader) -> bytes:
    """What the server sent until it cut the connection, by a close or a reset. A client
    that keeps sending is reset, not closed, when the server closes with its last bytes
    still unread (RFC 1122 4.2.2.13: a close with received data pending sends a RST): the
    reset is the cut-off, and it raced the close of the trickle test under load."""
    got = b""
    with contextlib.suppress(ConnectionResetError):
        while block := await asyncio.wait_for(reader.read(65_536), WAIT_S):
            got += block
    return got


async def healthz(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), WAIT_S)
    writer.close()
    return answer


PARTIAL_HEADERS = b"POST /sms/send HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
PARTIAL_BODY = (
    b"POST /sms/send HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    b"Content-Length: 4000\r\n\r\n" + b'{"username": "gw", '
)


async def test_slowloris_connections_are_closed_and_others_served(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with server(app, header_timeout_seconds=0.5, body_timeout_seconds=0.5) as port:
        conns = [await stalled(port, PARTIAL_HEADERS) for _ in range(40)]
        conns += [await stalled(port, PARTIAL_BODY) for _ in range(20)]
        conns += [await stalled(port, b"") for _ in range(10)]  # connects, sends nothing
        conns += [await stalled(port, b"G") for _ in range(10)]  # one byte of a request line
        assert b" 200 " in (await healthz(port)).split(b"\r\n")[0]
        answers = await asyncio.gather(*(closed_by_server(r) for r, _ in conns))
        for _, writer in conns:
            writer.close()
        # Stalled in the headers: told 408 (no request was ever started); in the body: closed
        # (the application is already running and hears that the client is gone).
        assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers[:40]), answers[:3]
        assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers[60:])
        assert all(a == b"" for a in answers[40:60]), answers[40:43]
        assert b" 200 " in (await healthz(port)).split(b"\r\n")[0]
    # Cut-off bodies reach the application as a client gone: one INFO line, no traceback
    # (item 10), and nothing at ERROR from uvicorn or simgate.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    gone = [r for r in caplog.records if "client disconnected" in r.getMessage()]
    assert len(gone) == 20
    assert all(r.levelno == logging.INFO and r.exc_info is None for r in gone)


async def test_a_kept_alive_connection_that_stalls_in_its_next_request_is_closed(
    app: Any,
) -> None:
    async with server(app, header_timeout_seconds=0.5, body_timeout_seconds=0.5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), WAIT_S)
        assert b" 200 " in status
        writer.write(PARTIAL_HEADERS)  # the next request, never finished
        await writer.drain()
        rest = await closed_by_server(reader)
        writer.close()
        assert b"408 Request Timeout" in rest


async def test_a_trickled_body_is_cut_off_though_bytes_keep_coming(app: Any) -> None:
    """The body deadline is a total: a byte every so often does not keep it open."""
    async with server(app, header_timeout_seconds=5, body_timeout_seconds=0.5) as port:
        reader, writer = await stalled(port, PARTIAL_BODY)
        done = asyncio.ensure_future(cut_off(reader))
        for _ in range(int(WAIT_S / 0.1)):
            if done.done():
                break
            with contextlib.suppress(ConnectionError):
                writer.write(b" ")
                await writer.drain()
            await asyncio.sleep(0.1)
        assert await done == b""
        writer.close()


async def test_the_connection_cap_evicts_a_stalled_client_for_a_new_one(app: Any) -> None:
    async with server(
        app, header_timeout_seconds=3600, body_timeout_seconds=3600, max_connections=20
    ) as port:
        conns = [await stalled(port, PARTIAL_HEADERS) for _ in range(20)]
        # Each new client takes the place of the oldest stalled one: all are answered.
        for _ in range(5):
            assert b" 200 " in (await healthz(port)).split(b"\r\n")[0]
        first = await closed_by_server(conns[0][0])
        assert first == b""  # evicted: closed without an answer
        for _, writer in conns:
            writer.close()


# ---- one write per answer ----------------------------------------------------------------
class Recorder:
    """A transport that records each write (the socket's ``send`` calls) and its close."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


Message = dict[str, Any]
OK_START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"11")],
}
OK_BODY: Message = {"type": "http.response.body", "body": b'{"code":200', "more_body": False}


async def _answer(
    one_write: bool,
    messages: list[Message],
    *,
    method: str = "POST",
    fail_after: int | None = None,
) -> Recorder:
    """Run a request cycle (answering in one write or not) whose application sends
    ``messages`` (and then raises, when ``fail_after`` says after how many); what went to
    the transport."""
    transport = Recorder()
    scope: Any = {"type": "http", "method": method, "path": "/x", "http_version": "1.1"}
    cycle = RequestResponseCycle(
        scope=scope,
        transport=transport,  # type: ignore[arg-type]
        flow=FlowControl(transport),  # type: ignore[arg-type]
        logger=logging.getLogger("test.uvicorn"),
        access_logger=logging.getLogger("test.uvicorn.access"),
        access_log=False,
        default_headers=[(b"server", b"uvicorn")],
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=True,
        on_response=lambda: None,
    )
    if one_write:
        answer_in_one_write(cycle)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for i, message in enumerate(messages):
            if i == fail_after:
                raise RuntimeError("a bug after the answer started")
            await send(message)

    await cycle.run_asgi(app)
    return transport


STREAMED = [
    {**OK_START, "headers": [(b"content-type", b"text/plain")]},
    {"type": "http.response.body", "body": b"one", "more_body": True},
    {"type": "http.response.body", "body": b"two", "more_body": False},
]


@pytest.mark.parametrize(
    ("messages", "method", "fail_after", "writes", "uvicorns"),
    [
        ([OK_START, OK_BODY], "POST", None, 1, 2),  # head and body in one write
        ([OK_START, {**OK_BODY, "body": b""}], "HEAD", None, 1, 1),  # a HEAD answer: its head
        (STREAMED, "GET", None, 2, 3),  # chunked: the head rides the first chunk
        ([OK_START, OK_BODY], "POST", 1, 1, 1),  # a bug after the start: the head, a close
        ([OK_START, OK_BODY], "POST", 0, 1, 2),  # a bug before it: uvicorn's 500
    ],
)
async def test_an_answer_is_one_write_of_the_same_bytes(
    messages: list[Message], method: str, fail_after: int | None, writes: int, uvicorns: int
) -> None:
    plain = await _answer(False, messages, method=method, fail_after=fail_after)
    ours = await _answer(True, messages, method=method, fail_after=fail_after)
    assert b"".join(ours.writes) == b"".join(plain.writes)  # byte for byte, dates aside
    assert ours.closed == plain.closed
    assert (len(ours.writes), len(plain.writes)) == (writes, uvicorns)


async def test_a_kept_alive_connection_gets_whole_answers(app: Any) -> None:
    async with server(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(2):  # kept alive: the second answer too
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            assert await reader.readexactly(length) == b'{"status":"ok"}'
        writer.close()


# ---- the keep-alive wait on the connection's one timer -------------------------------------
async def _healthz_kept_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    await reader.readexactly(length)


async def test_kept_alive_requests_make_no_keep_alive_timer_each(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn armed a timer after every answer and cancelled it on the next request's
    bytes (issue 15); the connection's own timer keeps that wait now."""
    loop = asyncio.get_running_loop()
    armed: list[str] = []
    call_later, call_at = loop.call_later, loop.call_at

    def counting_later(delay: float, callback: Any, *args: Any, **kw: Any) -> Any:
        armed.append(getattr(callback, "__name__", ""))
        return call_later(delay, callback, *args, **kw)

    def counting_at(when: float, callback: Any, *args: Any, **kw: Any) -> Any:
        armed.append(getattr(callback, "__name__", ""))
        return call_at(when, callback, *args, **kw)

    async with server(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await _healthz_kept_alive(reader, writer)  # the connection's timer is made
        monkeypatch.setattr(loop, "call_later", counting_later)
        monkeypatch.setattr(loop, "call_at", counting_at)
        for _ in range(20):
            await _healthz_kept_alive(reader, writer)
        monkeypatch.undo()
        writer.close()
    assert "timeout_keep_alive_handler" not in armed
    assert armed.count("_check") == 0, armed


async def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(
    app: Any,
) -> None:
    async with server(app, keep_alive_s=0.2, header_timeout_seconds=3600) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await _healthz_kept_alive(reader, writer)
        await _healthz_kept_alive(reader, writer)
        # Nothing more is sent: closed without a word (no 408: no request was started).
        assert await closed_by_server(reader) == b""
        writer.close()


async def test_a_request_in_time_keeps_the_connection_past_the_keep_alive_timeout(
    app: Any,
) -> None:
    """Each answer starts the wait afresh: a client that asks again within it is served,
    however long the connection has been open."""
    async with server(app, keep_alive_s=0.5, header_timeout_seconds=3600) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(8):  # 8 x 0.1 s: longer than one keep-alive timeout in all
            await _healthz_kept_alive(reader, writer)
            await asyncio.sleep(0.1)
        await _healthz_kept_alive(reader, writer)
        writer.close()


def test_on_response_complete_is_uvicorns_but_for_the_keep_alive_timer() -> None:
    """The override copies uvicorn's method (0.54) and changes one call: an uvicorn whose
    method differs must be read again before this passes."""

    def body(fn: Any) -> list[str]:
        lines = textwrap.dedent(inspect.getsource(fn)).splitlines()[1:]
        return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]

    theirs = body(HttpToolsProtocol.on_response_complete)
    ours = body(GuardedProtocol.on_response_complete)
    keep_alive_call = [
        "self.timeout_keep_alive_task = self.loop.call_later(",
        "self.timeout_keep_alive, self.timeout_keep_alive_handler",
        ")",
    ]
    assert theirs[-3:] == keep_alive_call
    assert ours[:-1] == theirs[:-3]
    assert ours[-1] == 'self._arm("idle", self.timeout_keep_alive)'
