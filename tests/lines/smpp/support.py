"""Helpers for SMPP line tests: a recording sink and a line bound to a FakeSmsc."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from simgate.clock import SystemClock
from simgate.codecs.segments import Encoding, choose_encoding, part_count
from simgate.errors import Busy
from simgate.lines.base import IncomingPart, IncomingSms, LineReport, SubmitRequest
from simgate.lines.smpp import SmppLine
from simgate.settings import SmppLineSettings


class RecordingSink:
    """An InboundSink that keeps what it is given; ``fail`` makes the next calls raise."""

    def __init__(self) -> None:
        self.reports: list[LineReport] = []
        self.incoming_sms: list[IncomingSms] = []
        self.parts: list[IncomingPart] = []
        self.parts_due: list[int] = []  # started_before_ms of each expire_parts call
        self.ports: list[tuple[int, bool]] = []
        self.fail = 0
        self.busy = 0  # the next incoming_parts calls refuse with Busy
        self.on_report: Callable[[], None] | None = None

    async def delivery_reports(self, line: str, reports: Sequence[LineReport]) -> None:
        if self.on_report is not None:
            self.on_report()
        if self.fail:
            self.fail -= 1
            raise RuntimeError("database down")
        self.reports.extend(reports)

    async def incoming(self, line: str, messages: Sequence[IncomingSms]) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("database down")
        self.incoming_sms.extend(messages)

    async def incoming_parts(self, line: str, parts: Sequence[IncomingPart]) -> None:
        if self.busy:
            self.busy -= 1
            raise Busy("too many incoming SMS wait for parts")
        if self.fail:
            self.fail -= 1
            raise RuntimeError("database down")
        self.parts.extend(parts)

    async def expire_parts(self, line: str, *, started_before_ms: int) -> None:
        self.parts_due.append(started_before_ms)

    async def port_changed(self, line: str, port: int, up: bool) -> None:
        self.ports.append((port, up))


def settings(port: int, **kw: Any) -> SmppLineSettings:
    base: dict[str, Any] = {
        "driver": "smpp",
        "port": port,
        "system_id": "simgate",
        "password": "pw",
        "response_timeout": 0.5,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
        "throttle_pause": 0.05,
        "bind_wait": 2.0,
        "receipt_hold": 0.5,
    }
    base.update(kw)
    return SmppLineSettings.model_validate(base)


@asynccontextmanager
async def started_line(port: int, **kw: Any) -> AsyncIterator[tuple[SmppLine, RecordingSink]]:
    line = SmppLine("smsc1", settings(port, **kw), SystemClock())
    sink = RecordingSink()
    await line.start(sink)
    try:
        yield line, sink
    finally:
        await line.stop()


_ids = iter(range(1, 10**9))


def request(
    text: str = "hello",
    *,
    recipient: str = "8613800138000",
    sender: str = "SimGate",
    report: bool = True,
    encoding: Encoding | None = None,
) -> SubmitRequest:
    enc = encoding if encoding is not None else choose_encoding(text)
    return SubmitRequest(
        message_id=next(_ids),
        port=0,
        sender=sender,
        recipient=recipient,
        text=text,
        encoding=enc,
        parts=_parts(text, enc),
        report_requested=report,
    )


def _parts(text: str, enc: Encoding) -> int:
    try:
        return part_count(text, enc)
    except ValueError:  # a text its encoding cannot carry (the line must reject it)
        return 1


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until ``check()`` holds (bounded); the assertion is the caller's."""
    for _ in range(int(within / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
