"""A real HTTP/1.1 receiver for push tests and benchmarks (keep-alive, scripted answers).

It listens on 127.0.0.1 with asyncio streams, records every request, and answers through a
*behaviour*: an async function ``(Received) -> Answer``. Named behaviours cover the cases the
push engine must survive: :func:`accept`, :func:`fail_first`, :func:`always`, :func:`hang`,
:func:`gather`.
It is deliberately small and strict (Content-Length bodies only, as httpx sends them).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Received:
    seq: int
    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True, slots=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


Behaviour = Callable[[Received], Awaitable[Answer]]
_REASONS = {200: "OK", 204: "No Content", 404: "Not Found", 429: "Too Many Requests"}


async def accept(_: Received) -> Answer:
    return Answer()


def always(status: int, headers: dict[str, str] | None = None) -> Behaviour:
    async def answer(_: Received) -> Answer:
        return Answer(status, headers or {})

    return answer


def fail_first(n: int, status: int = 503, headers: dict[str, str] | None = None) -> Behaviour:
    """The first ``n`` requests get ``status``; later ones are accepted."""
    count = itertools.count()

    async def answer(_: Received) -> Answer:
        return Answer(status, headers or {}) if next(count) < n else Answer()

    return answer


def gather(n: int) -> Behaviour:
    """Hold requests until ``n`` are held at once, then answer them all, and later ones at once.

    A sender never has more than its per-endpoint concurrency in flight, so ``n`` above it
    proves a second sender is sending too (two workers sharing one outbox)."""
    held = 0
    full = asyncio.Event()

    async def answer(_: Received) -> Answer:
        nonlocal held
        held += 1
        if held >= n:
            full.set()
        await full.wait()
        return Answer()

    return answer


def hang(release: asyncio.Event) -> Behaviour:
    """Hold every request until ``release`` is set (a receiver that stopped answering)."""

    async def answer(_: Received) -> Answer:
        await release.wait()
        return Answer()

    return answer


class PushReceiver:
    def __init__(self, behaviour: Behaviour = accept, *, port: int = 0) -> None:
        self.behaviour = behaviour
        self.port = port
        self.requests: list[Received] = []
        self.answered: list[tuple[Received, int]] = []
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self._seq = itertools.count()
        self.arrived = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._conns):
                task.cancel()
            for task in list(self._conns):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            while True:
                req = await self._read(reader)
                if req is None:
                    return
                self.requests.append(req)
                self.arrived.set()
                answer = await self.behaviour(req)
                self.answered.append((req, answer.status))
                head = [f"HTTP/1.1 {answer.status} {_REASONS.get(answer.status, 'Status')}"]
                body = b"" if answer.status in (204, 304) else answer.body  # RFC 9110 §15.3.5
                hdrs = dict(answer.headers)
                if body or answer.status not in (204, 304):
                    hdrs["content-length"] = str(len(body))
                head += [f"{k}: {v}" for k, v in hdrs.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return  # stop() cancels held requests: that ends the connection, not the server
        finally:
            self._conns.discard(task)
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> Received | None:
        line = await reader.readline()
        if not line:
            return None
        method, target, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            h = await reader.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await reader.readexactly(length) if length else b""
        return Received(next(self._seq), method, target, headers, body)

    def ids(self) -> list[str]:
        """``webhook-id`` of every request received, in arrival order."""
        return [r.headers.get("webhook-id", "") for r in self.requests]


async def _serve_forever(port: int) -> None:
    receiver = PushReceiver(accept, port=port)
    receiver.requests = _Discard()  # benchmarks: count nothing, keep nothing
    await receiver.start()
    print(f"port {receiver.port}", flush=True)
    await asyncio.Event().wait()


class _Discard(list[Received]):
    def append(self, item: Received) -> None:
        pass


def main() -> None:
    """``python -m simgate.testing.push_receiver [PORT]``: an accepting receiver (benchmarks)."""
    import sys  # noqa: PLC0415

    import uvloop  # noqa: PLC0415

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(_serve_forever(port))


if __name__ == "__main__":
    main()
