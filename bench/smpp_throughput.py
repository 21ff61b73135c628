"""SMPP submit throughput: simgate's SMPP line beside a bare client and Kannel, same SMSC.

    .venv/bin/python bench/smpp_throughput.py [--count 10000] [--rounds 3] [--smsc fast,node]
                                              [--no-kannel] [--long] [--recipients N]

The SMSC is the npm ``smpp`` server (tests/peers/node/server.js, a separate node process,
no receipts, no per-PDU log). In the same run, against that same SMSC:

1. ceiling: a bare client, smpp34 (Rust core), one transceiver bind, 64 submits in flight;
2. ``SmppLine.submit`` (one transceiver, window 64), ``--concurrency`` submits awaited at
   once as the dispatcher does with its batch, results not stored;
3. the whole simgate path: messages queued in SQLite, the dispatcher leases, submits through
   the SMPP line and records the results (what a deployment does per message);
4. Kannel 1.4.5 (bearerbox + smsbox, SMPP transceiver, max-pending-submits 64): the same
   messages pushed through its ``sendsms`` HTTP interface while the SMSC is down (queued in
   bearerbox), then the SMSC starts and Kannel's SMPP drain is timed from the first to the
   last submit_sm answered (its HTTP intake rate is shown too; it is the slower part). It
   runs in every round, between the others, like them (best round shown).

``--long``: 100,000 messages per round instead of 10,000 (10,000 take under 0.5 s against
either SMSC, so a scheduler hiccup moves a round's rate by a tenth), with Kannel's messages
queued ``--recipients 100`` to a sendsms request (``to`` is a space-separated list; each
recipient is still its own submit_sm in the timed drain) so its intake takes seconds, not
three minutes a round (568 requests/s measured, one recipient each).
Rates are messages per second; the ratio column is against the bare client's ceiling.

The process freezes its start-up objects out of the collector's sight once everything is
imported, as ``simgate run`` does once started (cli/serve.py). Without it this process is not
the one a deployment runs: the ~150,000 objects of the imports (simgate, pydantic, FastAPI,
SQLAlchemy) are walked by every full collection, and 100,000 submits set off about a dozen,
0.9-1.1 s in all with single pauses of 93-115 ms on a quiet machine (3.5-3.9 s and 375-450 ms
under load; gc.callbacks) during which no answer is read and the window runs dry; frozen,
0.05-0.19 s in all, and the line does 15-26 % more msg/s (same run, npm SMSC).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import smpp34
import uvloop

from bench.common import Table, bench_settings, enqueue, opened
from simgate.clock import SystemClock
from simgate.codecs.segments import Encoding
from simgate.lines.base import Outcome, SubmitRequest
from simgate.lines.smpp import SmppLine
from simgate.settings import SmppLineSettings
from simgate.testing.procs import free_port

NODE_DIR = Path(__file__).resolve().parent.parent / "tests" / "peers" / "node"


class SmscProcess:
    """An SMSC in its own process: the npm smpp server, or bench/fast_smsc.py."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.count_file = workdir / f"{kind}.count"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        if kind == "node":
            script = {"port": self.port, "receipts": "none", "quiet": True}
            script["count_file"] = str(self.count_file)
            self.argv, self.cwd = ["node", "server.js"], NODE_DIR
            self.env = {**os.environ, "SMPP_SCRIPT": json.dumps(script)}
        else:
            fast = Path(__file__).with_name("fast_smsc.py")
            self.argv = [sys.executable, str(fast), str(self.port), str(self.count_file)]
            self.cwd, self.env = workdir, dict(os.environ)

    def __enter__(self) -> SmscProcess:
        self.proc = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        if not self.proc.stdout.readline().startswith(b"LISTENING"):
            raise SystemExit(f"{self.kind} SMSC did not start (npm install in tests/peers/node?)")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def answered(self) -> int:
        try:
            return int(self.count_file.read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    async def wait_answered(self, target: int, limit: float) -> bool:
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if self.answered() >= target:
                return True
            await asyncio.sleep(0.01)
        return False


def _numbers(n: int, base: int) -> Iterator[str]:
    return (str(base + i) for i in range(n))


async def bare_client(smsc: SmscProcess, count: int) -> tuple[float, float]:
    client = smpp34.Client("127.0.0.1", smsc.port, "bare", "pw", bind_type="TRX", window_size=64)
    session = await client.connect()
    gate = asyncio.Semaphore(64)

    async def one(number: str) -> None:
        async with gate:
            resp = await session.submit_sm(number, b"benchmark message", source_addr="Bench")
            assert resp.command_status == 0

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(n) for n in _numbers(count, 8613800000000)))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    await session.unbind()
    await client.stop()
    return count / elapsed, cpu / count * 1e6


def _line_settings(port: int) -> SmppLineSettings:
    return SmppLineSettings(driver="smpp", port=port, system_id="simgate", password="pw", window=64)


async def smpp_line(smsc: SmscProcess, count: int, concurrency: int) -> tuple[float, int, float]:
    line = SmppLine("bench", _line_settings(smsc.port), SystemClock())

    class NoSink:
        async def delivery_reports(self, *a: object) -> None: ...
        async def incoming(self, *a: object) -> None: ...
        async def port_changed(self, *a: object) -> None: ...
        async def expire_parts(self, *a: object, **kw: object) -> None: ...
        async def incoming_parts(self, *a: object) -> None: ...

    await line.start(NoSink())
    numbers = list(_numbers(count, 8613900000000))
    ok = 0
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, count, concurrency):
        batch = [
            SubmitRequest(i + j, 0, "Bench", n, "benchmark message", Encoding.GSM7, 1, False)
            for j, n in enumerate(numbers[i : i + concurrency])
        ]
        results = await asyncio.gather(*(line.submit(r) for r in batch))
        ok += sum(1 for r in results if r.outcome is Outcome.OK)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    await line.stop()
    return count / elapsed, ok, cpu / count * 1e6


async def simgate_pipeline(smsc: SmscProcess, count: int, workdir: Path, before: int) -> float:
    """``before``: submits the SMSC answered earlier in this run (its count file lags 50 ms,
    so the start is taken only once the file shows all of them)."""
    if not await smsc.wait_answered(before, 10):
        raise SystemExit("the SMSC's count file did not catch up")
    url = f"sqlite+aiosqlite:///{workdir / 'pipeline.db'}"
    line = _line_settings(smsc.port).model_dump()
    settings = bench_settings(
        workdir, url, lines={"smsc": line}, routes=[{"prefix": "", "lines": ["smsc"]}],
        worker={"idle_poll_seconds": 0.01},
    )  # fmt: skip
    async with opened(settings, role="worker") as rt:
        sv = rt.services
        assert sv is not None
        account = await sv.accounts.create_account(name="bench", balance="100000")
        await enqueue(sv, account, count)
        start = time.perf_counter()
        await rt.start_worker()
        gc.freeze()  # as `simgate run` does once started (cli/serve.py)
        if not await smsc.wait_answered(before + count, 120):
            raise SystemExit("pipeline: the SMSC did not see every message")
        elapsed = time.perf_counter() - start
    return count / elapsed


KANNEL_CONF = """
group = core
admin-port = {admin}
admin-password = bench
admin-interface = 127.0.0.1
smsbox-port = {smsbox}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "{dir}/bearerbox.log"
log-level = 4
sms-resend-retry = 0

group = smsc
smsc = smpp
smsc-id = bench
host = 127.0.0.1
port = {smsc}
transceiver-mode = true
smsc-username = kannel
smsc-password = pw
system-type = ""
max-pending-submits = 64
enquire-link-interval = 30
reconnect-delay = 1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
log-file = "{dir}/smsbox.log"
log-level = 4

group = sendsms-user
username = bench
password = bench
max-messages = 1

group = sms-service
keyword = default
text = "ok"
"""


@contextlib.contextmanager
def kannel(workdir: Path, smsc_port: int) -> Iterator[tuple[int, int]]:
    ports = {"admin": free_port(), "smsbox": free_port(), "sendsms": free_port()}
    conf = workdir / "kannel.conf"
    conf.write_text(KANNEL_CONF.format(dir=workdir, smsc=smsc_port, **ports))
    procs = []
    try:
        for prog in ("bearerbox", "smsbox"):
            procs.append(
                subprocess.Popen(
                    [prog, str(conf)],
                    cwd=workdir,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            time.sleep(0.5)
        yield ports["sendsms"], procs[0].pid
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait(5)


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far (proc(5))."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def kannel_rates(
    kind: str, count: int, workdir: Path, recipients: int = 1
) -> tuple[float, float, float]:
    """(sendsms HTTP rate, SMPP drain rate, bearerbox CPU us per message). Kannel's sendsms
    interface is far slower than its SMPP client, so the messages are queued in bearerbox
    first with the SMSC down; the SMSC then starts and the drain (first to last submit_sm
    answered) is timed. ``recipients``: numbers per sendsms request (the HTTP rate is still
    messages per second)."""
    smsc = SmscProcess(kind, workdir)  # the port is chosen now, the process starts later
    with kannel(workdir, smsc.port) as (sendsms, bearerbox):
        url = f"http://127.0.0.1:{sendsms}/cgi-bin/sendsms"
        params = {"username": "bench", "password": "bench", "from": "Bench"}
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(100):  # until smsbox answers
                with contextlib.suppress(httpx.HTTPError):
                    await http.get(url, params={"username": "x", "password": "y"})
                    break
                await asyncio.sleep(0.1)
            gate = asyncio.Semaphore(8)  # Kannel's HTTP server is fastest with few clients

            async def one(numbers: list[str]) -> None:
                async with gate:
                    to = " ".join(numbers)
                    r = await http.get(url, params=params | {"to": to, "text": "benchmark message"})
                    assert r.status_code == 202, r.text

            numbers = list(_numbers(count, 8613600000000))
            start = time.perf_counter()
            await asyncio.gather(
                *(one(numbers[i : i + recipients]) for i in range(0, count, recipients))
            )
            http_rate = count / (time.perf_counter() - start)
        with smsc:
            first: float | None = None
            cpu = _proc_cpu(bearerbox)
            end = time.monotonic() + 180
            while time.monotonic() < end:
                seen = smsc.answered()
                if seen and first is None:
                    first = time.perf_counter()
                if seen >= count:
                    break
                await asyncio.sleep(0.01)
            else:
                raise SystemExit(f"kannel: the SMSC saw {smsc.answered()} of {count}")
            assert first is not None
            drain = count / max(time.perf_counter() - first, 1e-3)
            cpu = _proc_cpu(bearerbox) - cpu
    return http_rate, drain, cpu / count * 1e6


async def measure(kind: str, args: argparse.Namespace, workdir: Path) -> list[list[object]]:
    rows: list[list[object]] = []
    n = args.count
    label = {"node": "npm smpp", "fast": "fast_smsc.py"}[kind]
    kannel = not args.no_kannel and shutil.which("bearerbox") is not None
    with SmscProcess(kind, workdir) as smsc:
        # Interleaved rounds, best of each (Kannel's too): the machine is shared, so the best
        # round is the closest to what each client can do, and the ratios come from the same
        # minutes. CPU per message (the client process, all threads) depends less on the load.
        bare, bare_cpu, line, line_cpu = 0.0, math.inf, 0.0, math.inf
        k_http, k_drain, k_cpu = 0.0, 0.0, math.inf
        for i in range(args.rounds):
            rate, cpu = await bare_client(smsc, n)
            bare, bare_cpu = max(bare, rate), min(bare_cpu, cpu)
            rate, ok, cpu = await smpp_line(smsc, n, args.concurrency)
            assert ok == n, f"only {ok} of {n} submits OK"
            line, line_cpu = max(line, rate), min(line_cpu, cpu)
            if kannel:
                k_dir = workdir / f"kannel-{kind}-{i}"
                k_dir.mkdir()
                http_rate, drain, cpu = await kannel_rates(kind, n, k_dir, args.recipients)
                k_http, k_drain, k_cpu = (
                    max(k_http, http_rate),
                    max(k_drain, drain),
                    min(k_cpu, cpu),
                )
        rows.append(
            [label, "bare client (smpp34, window 64)", n, round(bare), "1.00", round(bare_cpu)]
        )
        rows.append(
            [label, "simgate SmppLine (1 trx, window 64)", n, round(line), _ratio(line, bare),
             round(line_cpu)]
        )  # fmt: skip
        rate = await simgate_pipeline(smsc, n, workdir / kind, before=2 * n * args.rounds)
        rows.append(
            [
                label,
                "simgate queue+dispatcher+line (SQLite)",
                n,
                round(rate),
                _ratio(rate, bare),
                "-",
            ]
        )
    if not kannel:
        rows.append([label, "Kannel 1.4.5", 0, "not run", "-", "-"])
    else:
        rows.append(
            [label, "Kannel 1.4.5 SMPP drain (queued, 64 pending)", n, round(k_drain),
             _ratio(k_drain, bare), round(k_cpu)]
        )  # fmt: skip
        rows.append(
            [label, f"Kannel 1.4.5 sendsms HTTP intake ({args.recipients} to/request)", n,
             round(k_http), _ratio(k_http, bare), "-"]
        )  # fmt: skip
    return rows


def _ratio(rate: float, ceiling: float) -> str:
    return f"{rate / ceiling:.2f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--smsc", default="fast,node", help="fast, node or both (comma list)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-kannel", action="store_true")
    parser.add_argument(
        "--long", action="store_true",
        help="100,000 messages a round, Kannel's queued 100 recipients to a sendsms request",
    )  # fmt: skip
    parser.add_argument("--recipients", type=int, help="numbers per Kannel sendsms request")
    args = parser.parse_args()
    if args.long and args.count == parser.get_default("count"):
        args.count = 100_000
    if args.recipients is None:
        args.recipients = 100 if args.long else 1
    rows: list[Sequence[object]] = []
    gc.freeze()  # the start-up objects, as `simgate run` does (module docstring)
    with tempfile.TemporaryDirectory(prefix="smpp-bench-") as tmp:
        for kind in args.smsc.split(","):
            workdir = Path(tmp) / kind
            (workdir / kind).mkdir(parents=True)
            rows += await measure(kind, args, workdir)
    table = Table(
        "SMPP submit_sm throughput, one bind, window 64 (messages/s; same run, same SMSC)",
        ["SMSC", "client", "messages", "msg/s", "vs bare", "CPU us/msg"],
        rows,
        note="Aim: SmppLine >= 3000 msg/s and >= Kannel. 'vs bare': ratio to the bare client.",
    )
    print(table.render())


if __name__ == "__main__":
    # The event loop simgate itself runs on (cli/common.py: run_async).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
