"""A modem line over FakeModems (tests/lines/modem): real ptys and TCP, the system clock with
short timeouts (the modems answer at once), and a RecordingSink."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from simgate.clock import SystemClock
from simgate.codecs.segments import choose_encoding, part_count
from simgate.lines.base import SubmitRequest
from simgate.lines.modem import ModemLine
from simgate.settings import ModemLineSettings
from simgate.testing.fake_modem import FakeModem
from simgate.testing.lines import RecordingSink

FAST = {
    "command_timeout": 1.0,
    "send_timeout": 2.0,
    "poll_interval": 0.2,
    "reopen_min": 0.05,
    "reopen_max": 0.2,
    "reset_settle": 0.05,
    "block_seconds": 0.5,
}


async def until(cond: Callable[[], bool], *, within: float = 10.0) -> None:
    """Wait for ``cond`` (a deadline for a hung test, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def request(mid: int, text: str, *, port: int = 0, to: str = "+4917012345678") -> SubmitRequest:
    enc = choose_encoding(text)
    return SubmitRequest(
        message_id=mid,
        port=port,
        sender="",
        recipient=to,
        text=text,
        encoding=enc,
        parts=part_count(text, enc),
        report_requested=True,
        lease_seq=1,
    )


@dataclass
class Rig:
    line: ModemLine
    sink: RecordingSink
    modems: list[FakeModem]
    cfg: ModemLineSettings

    async def ready(self) -> None:
        await until(lambda: all(p.usable for p in self.line.ports()))


@pytest.fixture
async def rig_factory(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    made: list[tuple[ModemLine, list[FakeModem]]] = []

    async def make(
        *,
        pty: int = 1,
        tcp: int = 1,
        journal: str | None = None,
        sink: RecordingSink | None = None,
        **cfg: object,
    ) -> Rig:
        modems = [FakeModem(imsi=f"46000000000000{i}") for i in range(pty + tcp)]
        urls = [await m.open_pty() for m in modems[:pty]]
        urls += [await m.serve_tcp() for m in modems[pty:]]
        settings = ModemLineSettings.model_validate(
            {"ports": urls, "journal": journal or str(tmp_path / "mr.journal"), **FAST, **cfg}
        )
        line = ModemLine("gsm", settings, SystemClock())
        sink = sink or RecordingSink()
        await line.start(sink)
        made.append((line, modems))
        return Rig(line, sink, modems, settings)

    yield make
    for line, modems in made:
        await line.stop()
        for m in modems:
            await m.close()
