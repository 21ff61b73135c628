"""TPS cap and throttle pause (timed by the injected clock), and binding over TLS."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

from simgate.lines.base import Outcome
from simgate.lines.smpp import SmppLine
from simgate.testing.clock import FakeClock
from simgate.testing.smsc import FakeSmsc

from .support import RecordingSink, eventually, request, settings, started_line


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.005)


async def test_tps_cap_spaces_submits_by_the_clock() -> None:
    clock = FakeClock()
    async with FakeSmsc() as smsc:
        line = SmppLine("paced", settings(smsc.port, tps=2), clock)
        await line.start(RecordingSink())
        try:
            tasks = [asyncio.create_task(line.submit(request(report=False))) for _ in range(3)]
            await eventually(lambda: len(smsc.submits) == 1)
            await _settle()
            assert len(smsc.submits) == 1  # the others wait for the clock, not for the SMSC
            await clock.advance(0.5)
            await eventually(lambda: len(smsc.submits) == 2)
            await _settle()
            assert len(smsc.submits) == 2
            await clock.advance(0.5)
            results = await asyncio.gather(*tasks)
        finally:
            await line.stop()
    assert [r.outcome for r in results] == [Outcome.OK] * 3


async def test_throttle_pauses_the_whole_line() -> None:
    clock = FakeClock()
    async with FakeSmsc.throttles(after=1, times=1) as smsc:
        line = SmppLine("paused", settings(smsc.port, throttle_pause=1.0), clock)
        await line.start(RecordingSink())
        try:
            assert (await line.submit(request())).outcome is Outcome.OK
            throttled = await line.submit(request())
            later = asyncio.create_task(line.submit(request()))
            await _settle()
            assert len(smsc.submits) == 2  # paused: nothing goes out
            await clock.advance(1.0)
            result = await later
        finally:
            await line.stop()
    assert throttled.outcome is Outcome.RETRY
    assert throttled.retry_after_s == 1.0
    assert result.outcome is Outcome.OK
    assert len(smsc.submits) == 3


def _server_context(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx, cert


async def test_binds_over_tls_and_verifies_the_certificate(tmp_path: Path) -> None:
    ctx, cert = _server_context(tmp_path)
    smsc = FakeSmsc()
    port = await smsc.start(tls=ctx)
    try:
        async with started_line(port, tls=True, tls_ca_file=str(cert)) as (line, _):
            result = await line.submit(request())
        async with started_line(port, tls=True, bind_wait=0.5) as (untrusting, _):
            refused = await untrusting.submit(request())  # unknown CA: never binds
    finally:
        await smsc.stop()
    assert result.outcome is Outcome.OK
    assert refused.outcome is Outcome.RETRY
    assert len(smsc.submits) == 1
