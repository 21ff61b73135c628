"""What an idle ``simgate run`` costs, and how fast it still answers (issue 15, "idle").

    scripts/bench --only idle --backend sqlite            # this tree
    scripts/bench --against main --only idle --rounds 1   # beside main, in the same run

One ``simgate run`` subprocess with the default sim line and one SMPP line bound to a
:class:`~simgate.testing.smsc.FakeSmsc` in this process (acking everything). After a warm-up
it gets no traffic for ``seconds``: its CPU is read from ``/proc/PID/stat`` (utime + stime)
before and after. Then single OpenVox ``/sms/send`` requests, spaced 0.2-0.8 s apart so the
worker is idle before each, go to the SMPP line: the latency is from the request leaving
here to its ``submit_sm`` arriving at the SMSC (accept + wake-up + lease + submit). Done
when (issue 15): idle < 1 % of a core and submit p99 < 50 ms.

The latency is broken into its phases with the times the gateway keeps on each message
(``accepted_ms``: the request was parsed and authenticated; ``submitting_ms``: the dispatcher
leased it) beside this process's own (request out, answer in, ``submit_sm`` at the SMSC), all
on the wall clock of the one machine (millisecond resolution):

- request → accepted: the HTTP edge, body parsing, authentication (a credential cache miss
  pays a scrypt here), the send's checks;
- accepted → answer: the accept's write (the writer's queue, its transaction, the commit)
  and the answer's way back;
- accepted → leased: the same write, then the wake-up and the dispatcher's cycle up to its
  lease (the loops are woken at the commit, so this can end before the answer arrives);
- leased → submit_sm: the lease's commit and the line's submit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import (
    GATEWAY_PASSWORD,
    GATEWAY_USER,
    Table,
    prepare_gateway_user,
    scratch_url,
    server_settings_data,
)
from simgate.codecs.smpp.pdus import SubmitSm
from simgate.store.tables import messages
from simgate.testing.procs import SimgateProcess, free_port, write_config
from simgate.testing.smsc import FakeSmsc

CLK_TCK = os.sysconf("SC_CLK_TCK")
ISSUE_FIGURE_PERCENT = 10.0  # issue 15: "an idle `simgate run` burns a tenth of a core"


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (proc(5): fields 14 and 15, after the ``(comm)`` field)."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def tree_cpu_seconds(pid: int) -> float:
    """:func:`cpu_seconds` of ``pid`` and all its descendants (``run``'s worker child, the
    ``--workers`` children): an idle gateway is what all its processes burn."""
    parents = {int(e): _ppid(int(e)) for e in os.listdir("/proc") if e.isdigit()}
    tree, grew = {pid}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0.0
    for member in tree:
        with contextlib.suppress(OSError):  # ended meanwhile
            total += cpu_seconds(member)
    return total


class ArrivalClock:
    """FakeSmsc's ``status_for`` hook: notes when each text's submit_sm arrived."""

    def __init__(self) -> None:
        self.arrived: dict[bytes, float] = {}
        self.changed = asyncio.Event()

    def __call__(self, _index: int, pdu: SubmitSm) -> int:
        self.arrived[pdu.short_message] = time.perf_counter()
        self.changed.set()
        return 0  # ESME_ROK

    async def arrival_of(self, text: bytes) -> float:
        while text not in self.arrived:
            self.changed.clear()
            await self.changed.wait()
        return self.arrived[text]


async def _bound(smsc: FakeSmsc) -> None:
    async with asyncio.timeout(30.0):
        while smsc.binds < 1:  # noqa: ASYNC110 (FakeSmsc has no event for it)
            await asyncio.sleep(0.05)


def _pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(backend: str, workdir: Path, *, seconds: float, sends: int) -> Table:
    arrivals = ArrivalClock()
    smsc = FakeSmsc(receipts=False, status_for=arrivals)
    smsc_port = await smsc.start()
    port = free_port()
    try:
        async with scratch_url(backend, workdir) as url:
            await prepare_gateway_user(workdir, url, port)
            data = server_settings_data(workdir, url, port)
            data["lines"] = {
                "sim": {"driver": "sim"},
                "smpp": {"driver": "smpp", "port": smsc_port, "system_id": "idle"},
            }
            data["openvox"] = {"line": "smpp"}  # /sms/send goes to the SMPP line
            config = write_config(workdir / "idle.toml", data)
            with SimgateProcess(["run"], workdir=workdir, config=config, port=port) as proc:
                await asyncio.to_thread(proc.wait_healthy, 60.0)
                await _bound(smsc)
                await asyncio.sleep(3.0)  # start-up work (first reaper pass, metrics) settles
                before, t0 = tree_cpu_seconds(proc.pid), time.perf_counter()
                await asyncio.sleep(seconds)
                used = tree_cpu_seconds(proc.pid) - before
                idle_percent = 100 * used / (time.perf_counter() - t0)
                sent = await _send_spaced(proc.url, arrivals, sends)
                proc.stop()
            phases = await _phases(url, sent)
    finally:
        await smsc.stop()
    latencies = [s.submitted_ms - s.start_ms for s in sent]
    answers = [s.answered_ms - s.start_ms for s in sent]
    rows: list[Sequence[Any]] = [
        ["idle CPU, % of one core", idle_percent, ISSUE_FIGURE_PERCENT, 1.0],
        ["submit latency p50, ms", _pct(latencies, 50), "", ""],
        ["submit latency p99, ms", _pct(latencies, 99), "", 50.0],
        ["submit latency max, ms", max(latencies), "", ""],
        ["  of which HTTP accept p50, ms", _pct(answers, 50), "", ""],
        ["  of which HTTP accept p99, ms", _pct(answers, 99), "", ""],
    ]
    for name, spans in phases.items():
        rows.append([f"  {name} p50, ms", _pct(spans, 50), "", ""])
        rows.append([f"  {name} p99, ms", _pct(spans, 99), "", ""])
    return Table(
        f"idle [{backend}]: `simgate run`, sim + SMPP line bound, {seconds:.0f} s without "
        f"traffic, then {sends} single sends 0.2-0.8 s apart",
        ["what", "this tree", "issue 15 (before)", "target"],
        rows,
        "latency: HTTP request out → submit_sm at the SMSC; CPU from /proc/PID/stat",
    )


@dataclass(frozen=True, slots=True)
class Sent:
    """One send's times, ms on the wall clock (the gateway's stamps are on the same one)."""

    number: str
    start_ms: float  # request out
    answered_ms: float  # HTTP answer in
    submitted_ms: float  # submit_sm at the SMSC


async def _send_spaced(base: str, arrivals: ArrivalClock, count: int) -> list[Sent]:
    """Each of ``count`` sends, spaced 0.2-0.8 s apart, timed to its answer and submit_sm."""
    rng = random.Random(15)
    out: list[Sent] = []
    # perf_counter for the spans, anchored once to the wall clock the gateway stamps with.
    wall = time.time() - time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:
        for i in range(count):
            await asyncio.sleep(rng.uniform(0.2, 0.8))
            text = f"idle {i}"
            number = f"8613900{i:06d}"
            body = {
                "username": GATEWAY_USER,
                "password": GATEWAY_PASSWORD,
                "dest_num": number,
                "msg": text,
                "mode": 0,
            }
            start = time.perf_counter()
            answer = await client.post("/sms/send", json=body)
            answered = time.perf_counter()
            if answer.status_code != 200 or '"code":200' not in answer.text.replace(" ", ""):
                raise RuntimeError(f"send {i} refused: {answer.status_code} {answer.text[:200]}")
            async with asyncio.timeout(10.0):
                arrived = await arrivals.arrival_of(text.encode())
            out.append(Sent(number, *(1000 * (wall + t) for t in (start, answered, arrived))))
    return out


PHASES = (
    "request → accepted",
    "accepted → answer",
    "accepted → leased",
    "leased → submit_sm",
)


async def _phases(url: str, sent: list[Sent]) -> dict[str, list[float]]:
    """Each send's latency in the phases of the module docstring (from the message rows)."""
    m = messages.c
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(m.recipient, m.accepted_ms, m.submitting_ms).where(
                    m.recipient.in_([s.number for s in sent])
                )
            )
            stamps = {str(r[0]): (int(r[1]), r[2]) for r in rows}
    finally:
        await engine.dispose()
    out: dict[str, list[float]] = {name: [] for name in PHASES}
    for s in sent:
        accepted, leased = stamps[s.number]
        if leased is None:  # cannot be: it reached the SMSC
            raise RuntimeError(f"message to {s.number} has no lease time")
        spans = (
            accepted - s.start_ms,
            s.answered_ms - accepted,
            leased - accepted,
            s.submitted_ms - leased,
        )
        for name, span in zip(PHASES, spans, strict=True):
            out[name].append(span)
    return out
