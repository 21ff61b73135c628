"""Modem ports' state across processes (services/lines.py, issue 16): the process driving a
modem line keeps each port's state in the database; a process that does not drive it (the
CLI, a ``serve``-only API, the console) shows the stored state, with its age. Both backends,
a real ModemLine over a FakeModem on TCP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simgate.clock import SystemClock
from simgate.lines.base import PortInfo
from simgate.lines.modem import ModemLine
from simgate.runtime import Runtime
from simgate.services.lines import LineService
from simgate.settings import ModemLineSettings
from simgate.testing.clock import FakeClock
from simgate.testing.fake_modem import FakeModem
from simgate.testing.lines import RecordingSink
from tests.lines.modem.conftest import FAST, request, until


@pytest.fixture
async def modem() -> AsyncIterator[FakeModem]:
    m = FakeModem(imsi="460001111122222", number="+15550002222", operator="KEPTNET")
    yield m
    await m.close()


async def stored(line_state: LineService, *, reg: str) -> PortInfo:
    """The stored port 0 once it shows ``reg`` (a deadline for a hung test, not timing)."""
    for _ in range(1000):
        ports = await line_state.stored_ports("gsm")
        if ports and ports[0][0].reg == reg:
            return ports[0][0]
        await asyncio.sleep(0.01)
    raise AssertionError(f"port never stored as {reg}")


async def test_a_process_not_driving_the_line_shows_the_kept_state_with_its_age(
    runtime: Runtime, modem: FakeModem, tmp_path: Path, clock: FakeClock
) -> None:
    cfg = ModemLineSettings.model_validate(
        {"ports": [await modem.serve_tcp()], "journal": str(tmp_path / "mr"), **FAST}
        | {"block_seconds": 3600.0}
    )
    driving, elsewhere = ModemLine("gsm", cfg, SystemClock()), ModemLine("gsm", cfg, SystemClock())
    assert runtime.services is not None
    line_state = runtime.services.line_state
    line_state.wire({"gsm": driving, "other": elsewhere})
    assert elsewhere.ports()[0].reg == "POWER_OFF"  # nothing stored yet
    await driving.start(RecordingSink())
    try:
        await until(lambda: driving.ports()[0].usable)
        kept = await stored(line_state, reg="REGISTER_OK")
        assert (kept.imsi, kept.iccid, kept.imei, kept.number, kept.operator, kept.signal) == (
            modem.imsi,
            modem.iccid,
            modem.imei,
            modem.number,
            "KEPTNET",
            modem.signal,
        )
        await clock.advance(30)
        (view,) = await line_state.port_views({"gsm": elsewhere})
        assert (view.port.reg, view.port.imsi, view.age_ms) == ("REGISTER_OK", modem.imsi, 30_000)
        (live,) = await line_state.port_views({"gsm": driving})
        assert live.age_ms is None  # live state first where the line is driven
        await line_state.refresh_stored({"gsm": elsewhere})
        assert elsewhere.ports()[0].registered
        assert elsewhere.ports()[0].imsi == modem.imsi

        modem.cms_errors(500, times=3)  # fail_limit 3: the port is blocked (and reset)
        for mid in range(3):
            await driving.submit(request(mid, "hi"))
        for _ in range(1000):
            await line_state.refresh_stored({"gsm": elsewhere})
            if elsewhere.ports()[0].blocked:
                break
            await asyncio.sleep(0.01)
        assert elsewhere.ports()[0].blocked
    finally:
        await driving.stop()
    await stored(line_state, reg="POWER_OFF")  # nobody drives it any more
