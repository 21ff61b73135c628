"""Modem line throughput: messages per minute per port, simgate's line vs a bare AT loop.

    .venv/bin/python -m bench.modem [--latency 1.0] [--ports 4] [--count 8] [--cpu-ports 32]

Real time, not a scaled clock: the FakeModems (testing/fake_modem.py) run in a separate
process over TCP and answer each ``+CMGS`` after ``--latency`` seconds (a real network takes
1-3 s), with an inline ``+CDS`` report right after. In the same run, against the same modems:

1. the limit: a bare AT loop per port (``AT+CMGS=n``, wait for ``> ``, the PDU, wait for
   ``OK``), the next message the moment the last is answered;
2. ``ModemLine.submit`` per port, one message after another (as the dispatcher gives a port
   one message at a time), reports matched and handed to a sink that keeps them;
3. the CPU of this process (the line only; the modems are the other process) for
   ``--cpu-ports`` ports sending at once, per message and as a share of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import serialx

from bench.common import Table
from simgate.clock import SystemClock
from simgate.codecs import tpdu
from simgate.codecs.segments import Encoding
from simgate.lines.base import Outcome, SubmitRequest
from simgate.lines.modem import ModemLine
from simgate.settings import ModemLineSettings
from simgate.testing.fake_modem import FakeModem
from simgate.testing.lines import RecordingSink

TEXT = "Your one-time code is 123456. It expires in 10 minutes."


async def serve(ports: int, latency: float) -> None:
    """The modem bank: ``ports`` FakeModems on TCP; prints their URLs, runs until killed."""
    modems = [FakeModem() for _ in range(ports)]
    urls = []
    for m in modems:
        m.slow(latency)
        urls.append(await m.serve_tcp())
    print(json.dumps(urls), flush=True)
    await asyncio.Event().wait()


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def bare_loop(urls: list[str], count: int) -> float:
    """Each port: +CMGS and its PDU, wait for OK, again. Returns elapsed seconds."""
    (part,) = tpdu.submit_parts(
        TEXT, Encoding.GSM7, recipient="+4917012345678", ref=0, srr=True, vp=None
    )

    async def port(url: str) -> None:
        reader, writer = await serialx.open_serial_connection(url, baudrate=115200)
        buf = b""

        async def until(token: bytes) -> None:
            nonlocal buf
            while token not in buf:
                buf += await reader.read(4096)
            buf = buf[buf.index(token) + len(token) :]

        writer.write(b"ATE0\r")
        await until(b"OK\r\n")
        for _ in range(count):
            writer.write(f"AT+CMGS={part.length}\r".encode())
            await until(b"> ")
            writer.write(part.pdu.hex().upper().encode() + b"\x1a")
            await until(b"OK\r\n")
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(port(u) for u in urls))
    return time.perf_counter() - start


async def line_run(urls: list[str], count: int, workdir: Path) -> tuple[float, float, int]:
    """``count`` messages per port through ModemLine.submit. Returns (elapsed s, CPU s,
    reports matched)."""
    cfg = ModemLineSettings(
        ports=urls,
        journal=str(workdir / f"bench-{len(urls)}.mr"),
        poll_interval=30.0,
        send_timeout=30.0,
    )
    line = ModemLine("bench", cfg, SystemClock())
    sink = RecordingSink()
    await line.start(sink)
    try:
        await until(lambda: all(p.usable for p in line.ports()))

        async def port(index: int) -> None:
            for i in range(count):
                mid = index * 1_000_000 + i
                req = SubmitRequest(
                    message_id=mid,
                    port=index,
                    sender="",
                    recipient="+4917012345678",
                    text=TEXT,
                    encoding=Encoding.GSM7,
                    parts=1,
                    report_requested=True,
                    lease_seq=1,
                )
                result = await line.submit(req)
                assert result.outcome is Outcome.OK, result

        c0, start = cpu(), time.perf_counter()
        await asyncio.gather(*(port(i) for i in range(len(urls))))
        await until(lambda: len(sink.reports) >= count * len(urls))
        return time.perf_counter() - start, cpu() - c0, len(sink.reports)
    finally:
        await line.stop()


async def until(cond: Callable[[], bool], within: float = 600.0) -> None:
    end = time.monotonic() + within
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("the modem bank stopped answering")
        await asyncio.sleep(0.01)


def start_bank(ports: int, latency: float) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.modem", "serve", str(ports), str(latency)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")},
    )
    assert proc.stdout is not None
    urls: list[str] = json.loads(proc.stdout.readline())
    return proc, urls


async def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"]:
        await serve(int(argv[1]), float(argv[2]))
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=1.0, help="+CMGS answer delay, seconds")
    ap.add_argument("--ports", type=int, default=4)
    ap.add_argument("--count", type=int, default=8, help="messages per port")
    ap.add_argument("--cpu-ports", type=int, default=32)
    args = ap.parse_args(argv)
    workdir = Path(os.environ.get("TMPDIR", "/tmp"))
    proc, urls = start_bank(max(args.ports, args.cpu_ports), args.latency)
    try:
        bare = await bare_loop(urls[: args.ports], args.count)
        elapsed, _, _ = await line_run(urls[: args.ports], args.count, workdir)
        many, cpu_s, reports = await line_run(urls[: args.cpu_ports], args.count, workdir)
    finally:
        proc.kill()  # the bank this run started, by its pid
        proc.wait()

    count: int = args.count

    def per_port_minute(seconds: float) -> float:
        return count / seconds * 60

    limit = per_port_minute(bare)
    rows: list[Sequence[Any]] = [
        ["bare AT loop (limit)", args.ports, per_port_minute(bare), 1.0],
        [
            "ModemLine.submit",
            args.ports,
            per_port_minute(elapsed),
            per_port_minute(elapsed) / limit,
        ],
        ["ModemLine.submit", args.cpu_ports, per_port_minute(many), per_port_minute(many) / limit],
    ]
    print(
        Table(
            f"modem line: messages/min per port, +CMGS latency {args.latency}s (real time), "
            f"{args.count} per port",
            ["path", "ports", "msg/min/port", "vs limit"],
            rows,
        ).render()
    )
    total = args.count * args.cpu_ports
    print(
        Table(
            f"CPU of the line process, {args.cpu_ports} ports",
            ["messages", "reports matched", "CPU s", "CPU ms/message", "share of one core"],
            [[total, reports, cpu_s, cpu_s / total * 1000, cpu_s / many]],
        ).render()
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))
