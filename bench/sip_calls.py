"""SIP line cost (issue 17): calls held with audio on one core, and calls set up per second,
against sipp as the UAS; the simulated voice line in the same run as the baseline.

    .venv/bin/python bench/sip_calls.py [--held 10,50,100] [--hold-seconds 5] [--setups 300]

* held: N calls answered by sipp (``-rtp_echo``: it sends our audio back, so every call both
  sends and receives 50 packets/s); once all are up, our process's CPU time over
  ``--hold-seconds`` of wall time, as % of one core and per call. The sim line's calls do no
  media, so its row is the floor of the call machinery alone.
* setups: calls placed, answered and hung up at once (zero-length audio), as many at a time as
  the line allows (max_concurrent 50), no calls-per-second cap: completed calls per second.

The line is driven directly (no database, no dispatcher): the numbers are the line's own.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/sip_calls.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.sipp import Sipp

from bench.common import Table
from simgate.clock import SystemClock
from simgate.domain.calls import Audio
from simgate.lines.sim_voice import SimVoiceLine
from simgate.lines.sip.line import SipVoiceLine
from simgate.lines.voice import Call, CallEventKind, CallRequest, VoiceLine
from simgate.settings import SimVoiceLineSettings

RTP_PORTS = "40000-41999"  # 1000 calls
SIM = SimVoiceLineSettings(
    calls_per_second=1_000_000,
    max_concurrent=10_000,
    answer_ratio=1.0,
    busy_ratio=0.0,
    setup_seconds=(0.0, 0.0),
    ring_seconds=(0.0, 0.0),
    early_hangup_ratio=0.0,
    dtmf_ratio=0.0,
)


async def _answered(call: Call) -> bool:
    async for event in call.events():
        if event.kind is CallEventKind.ANSWERED:
            return True
        if event.kind is CallEventKind.ENDED:
            return False
    return False


async def _drain(call: Call) -> None:
    async for _ in call.events():
        pass


async def held(line: VoiceLine, n: int, hold_s: float) -> tuple[float, int, float]:
    """CPU % of one core while ``n`` answered calls play audio; returns (cpu %, calls up,
    RTP packets per second sent and received in the window, for a SIP line)."""
    audio = Audio(b"\x00\x01" * 8000 * int(hold_s + 30))  # longer than the window
    calls = [await line.dial(CallRequest(i, f"86138{i:08d}", "")) for i in range(n)]
    up = await asyncio.gather(*(_answered(c) for c in calls))
    for call, ok in zip(calls, up, strict=True):
        if ok:
            await call.play(audio, 1)
    await asyncio.sleep(0.5)  # every player running
    packets0 = _packets(line)
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(hold_s)
    wall = time.monotonic() - wall0
    cpu = (time.process_time() - cpu0) / wall * 100
    pps = (_packets(line) - packets0) / wall
    for call in calls:
        await call.hangup()
    await asyncio.gather(*(_drain(c) for c in calls))
    return cpu, sum(up), pps


def _packets(line: VoiceLine) -> int:
    if isinstance(line, SipVoiceLine):
        return line.stats.rtp.sent + line.stats.rtp.received
    return 0


async def setups(line: VoiceLine, total: int, at_once: int) -> float:
    """Calls completed per second: dial, answer, hang up, ``at_once`` at a time."""
    todo = iter(range(total))
    done = 0

    async def worker() -> None:
        nonlocal done
        for i in todo:
            call = await line.dial(CallRequest(i, f"86139{i:08d}", ""))
            if await _answered(call):
                await call.hangup()
                done += 1
            await _drain(call)

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(at_once)))
    return done / (time.monotonic() - start)


async def main(counts: list[int], hold_s: float, total: int) -> None:
    rows: list[Sequence[Any]] = []
    clock = SystemClock()
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            sim = SimVoiceLine("sim", SIM, clock)
            await sim.start()
            sim_cpu, _, _ = await held(sim, n, hold_s)
            await sim.stop()
            sipp = Sipp("answer", Path(tmp), calls=n, echo=True)
            try:
                await asyncio.sleep(0.3)
                sip = SipVoiceLine(
                    "sip", sipp.line(max_concurrent=n + 10, rtp_ports=RTP_PORTS), clock
                )
                await sip.start()
                sip_cpu, sip_up, pps = await held(sip, n, hold_s)
                await sip.stop()
            finally:
                sipp.stop()
            rows.append(
                [
                    n,
                    sip_up,
                    round(pps),
                    round(sip_cpu, 1),
                    round(sip_cpu / max(sip_up, 1), 2),
                    round(sim_cpu, 1),
                ]
            )
        print(
            Table(
                f"Calls held with audio ({hold_s:g} s window, one process, % of one core)",
                ["calls", "sip up", "rtp pkts/s", "sip cpu %", "sip cpu %/call", "sim cpu %"],
                rows,
                note="rtp pkts/s: sent + received (sipp -rtp_echo sends our audio back): 100/call",
            ).render()
        )
        sim = SimVoiceLine("sim", SIM, clock)
        await sim.start()
        sim_rate = await setups(sim, total, 50)
        await sim.stop()
        sipp = Sipp("answer", Path(tmp), calls=total)
        try:
            await asyncio.sleep(0.3)
            sip = SipVoiceLine("sip", sipp.line(max_concurrent=60, rtp_ports=RTP_PORTS), clock)
            await sip.start()
            sip_rate = await setups(sip, total, 50)
            await sip.stop()
        finally:
            sipp.stop()
        print(
            Table(
                f"Calls set up per second ({total} calls, 50 at a time)",
                ["line", "calls/s", "vs sim"],
                [
                    ["sip (sipp UAS)", round(sip_rate, 1), round(sip_rate / sim_rate, 3)],
                    ["sim", round(sim_rate, 1), 1.0],
                ],
            ).render()
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held", default="10,50,100")
    parser.add_argument("--hold-seconds", type=float, default=5.0)
    parser.add_argument("--setups", type=int, default=300)
    args = parser.parse_args()
    counts = [int(x) for x in args.held.split(",")]
    asyncio.run(main(counts, args.hold_seconds, args.setups))
