"""SMPP server intake: submit_sm accepted per second on one transceiver bind, window 64.

    .venv/bin/python bench/smpp_server.py [--count 20000] [--rounds 3]

The client is smpp34 (Rust core) in this process: one transceiver bind, 64 submit_sm in
flight, every answer checked. In the same run, against:

1. the limit: bench/fast_smsc.py, a bare listener in its own process that reads only PDU
   headers and acks each submit_sm (nothing decoded or stored);
2. simgate's SMPP server (``simgate serve`` with ``[smpp_server] enabled``, SQLite, its own
   process): each submit_sm decoded, priced, charged and committed before its answer;
3. Jasmin 0.11.1's SMPP server (smpps; PyPI ``jasmin`` in its own venv with the local
   RabbitMQ and Redis, started and configured through jCli by bench/compare.py's helpers:
   a user, a default MT route to a connector bound to a second bare listener). Jasmin
   answers a submit_sm once it is routed and queued in RabbitMQ;
4. Kannel's SMPP server (opensmppbox): not packaged in Debian 12 (``apt-cache policy
   opensmppbox`` is empty), so not run.

simgate runs the API role only (no worker): the table measures intake, not sending. Rates
are messages per second; the ratio column is against the bare listener of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import smpp34
import uvloop

from bench.common import Table
from bench.compare import (
    JASMIN_CFG,
    JASMIN_VENV,
    _wait_listening,
    ensure_jasmin,
    jasmin_brokers,
    jcli,
    started,
)
from bench.smpp_throughput import SmscProcess
from simgate.testing.procs import SimgateProcess, free_port, write_config

SYSTEM_ID, PASSWORD = "bench", "benchpw"
WINDOW = 64
# This checkout's sources, not an installed copy's, in the simgate processes.
ENV = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}


async def client_rate(port: int, count: int) -> tuple[float, float]:
    """(accepted/s, client CPU µs per message) over one transceiver bind."""
    client = smpp34.Client(
        "127.0.0.1", port, SYSTEM_ID, PASSWORD, bind_type="TRX", window_size=WINDOW
    )
    session = await client.connect()
    gate = asyncio.Semaphore(WINDOW)
    refused = 0

    async def one(i: int) -> None:
        nonlocal refused
        async with gate:
            resp = await session.submit_sm(
                str(447700000000 + i), b"benchmark message", source_addr="Bench"
            )
            if resp.command_status != 0:
                refused += 1

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    await session.unbind()
    await client.stop()
    if refused:
        raise SystemExit(f"{refused} of {count} submit_sm refused")
    return count / elapsed, cpu / count * 1e6


def bare_listener(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    fast = Path(__file__).with_name("fast_smsc.py")
    proc = subprocess.Popen(
        [sys.executable, str(fast), str(port), str(workdir / "bare.count")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert proc.stdout is not None
    if not proc.stdout.readline().startswith(b"LISTENING"):
        raise SystemExit("fast_smsc.py did not start")
    return proc, port


def simgate_server(workdir: Path, count: int) -> tuple[SimgateProcess, int]:
    smpp_port = free_port()
    config = write_config(
        workdir / "simgate.toml",
        {
            "data_dir": str(workdir / "data"),
            "log_level": "warning",
            "demo": {"create": False},
            "smpp_server": {"enabled": True, "port": smpp_port, "window": WINDOW},
        },
    )
    for args in (
        ["accounts", "create", "bench", "--balance", str(count * 10)],
        ["smpp-users", "create", "bench", "--system-id", SYSTEM_ID, "--password", PASSWORD],
    ):
        admin = SimgateProcess(args, workdir=workdir, config=config, env=ENV, name="admin").start()
        if admin.wait(120) != 0:
            raise SystemExit(f"simgate {' '.join(args)} failed: {admin.stderr()}")
    proc = SimgateProcess(
        ["serve"], workdir=workdir, config=config, env=ENV, port=free_port()
    ).start()
    proc.wait_output("smpp server on", 60)
    return proc, smpp_port


@contextlib.asynccontextmanager
async def jasmin_server(workdir: Path) -> AsyncIterator[int]:
    """jasmind with its SMPP server, a user ``bench`` and a default route to a bare
    listener; yields the SMPP server's port. Stopped after, by pid."""
    python = ensure_jasmin()
    root = workdir / "jasmin"
    etc = root / "etc" / "jasmin"
    (etc / "resource").mkdir(parents=True)
    (etc / "store").mkdir()
    (root / "log").mkdir()
    site = next((JASMIN_VENV / "lib").glob("python3*/site-packages"))
    spec = etc / "resource" / "amqp0-9-1.xml"  # txamqp's spec, where Jasmin looks
    shutil.copy(site / "txamqp" / "specs" / "standard" / "amqp0-9-1.stripped.xml", spec)
    ports = {name: free_port() for name in ("jcli", "http", "router", "cm", "spb", "smpps")}
    (etc / "jasmin.cfg").write_text(JASMIN_CFG.format(spec=spec, **ports))
    env = {
        **os.environ, "ROOT_PATH": str(root), "CONFIG_PATH": str(etc),
        "LOG_PATH": str(root / "log"),
    }  # fmt: skip
    argv = [str(python), str(JASMIN_VENV / "bin" / "jasmind.py"), "-c", str(etc / "jasmin.cfg")]
    with (
        jasmin_brokers(workdir),
        SmscProcess("fast", workdir) as smsc,
        started(argv, cwd=root, env=env, log=root / "jasmind.out") as jasmind,
    ):
        await _wait_listening(ports["jcli"], 60, jasmind)
        answer = await jcli(
            ports["jcli"],
            [
                "smppccm -a", "cid bench_smsc", "host 127.0.0.1", f"port {smsc.port}",
                "username jasmin", "password pw", "submit_throughput 0", "ok",
                "smppccm -1 bench_smsc",
                "group -a", "gid bench", "ok",
                "user -a", "uid bench", f"username {SYSTEM_ID}", f"password {PASSWORD}",
                "gid bench", "mt_messaging_cred quota smpps_throughput ND", "ok",
                "mtrouter -a", "type DefaultRoute", "connector smppc(bench_smsc)", "rate 0.00",
                "ok",
            ],
        )  # fmt: skip
        for needed in ("Successfully added connector", "Successfully added User",
                       "Successfully added MTRoute"):  # fmt: skip
            if needed not in answer:
                raise RuntimeError(f"jCli did not confirm {needed!r}: {answer[-300:]!r}")
        for _ in range(100):  # the connector binds in the background
            if "BOUND_TRX" in await jcli(ports["jcli"], ["smppccm --list"]):
                break
            await asyncio.sleep(0.1)
        await _wait_listening(ports["smpps"], 30, jasmind)
        yield ports["smpps"]


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10)


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-smpp-server-"))
    n = args.count
    rows: dict[str, list[tuple[float, float]]] = {"bare": [], "simgate": [], "jasmin": []}
    jasmin_note = "not run (--no-jasmin)"
    bare, bare_port = bare_listener(workdir)
    sim, sim_port = simgate_server(workdir, n * (args.rounds + 1))
    try:
        async with contextlib.AsyncExitStack() as stack:
            jasmin_port: int | None = None
            if args.jasmin:
                try:
                    jasmin_port = await stack.enter_async_context(jasmin_server(workdir))
                    await client_rate(jasmin_port, min(n, 2000))  # warm-up, as for simgate
                except Exception as exc:  # a row that says why, not a lost table
                    jasmin_port, jasmin_note = None, f"not run: {exc}"[:200]
            await client_rate(sim_port, min(n, 2000))  # warm-up: caches, id block, pages
            for _ in range(args.rounds):  # interleaved, so all see the same machine
                rows["bare"].append(await client_rate(bare_port, n))
                rows["simgate"].append(await client_rate(sim_port, n))
                if jasmin_port is not None:
                    rows["jasmin"].append(await client_rate(jasmin_port, n))
    finally:
        stop(bare)
        sim.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    best = {k: max(v) for k, v in rows.items() if v}
    table_rows: list[Sequence[Any]] = []
    for key, label in (
        ("bare", "bare listener (acks only)"),
        ("simgate", "simgate (committed)"),
        ("jasmin", "Jasmin 0.11.1 smpps (queued in RabbitMQ)"),
    ):
        if key not in best:
            table_rows.append([label, jasmin_note, "-", "-"])
            continue
        rate, cpu = best[key]
        table_rows.append([label, f"{rate:,.0f}", f"{rate / best['bare'][0]:.2f}", f"{cpu:.0f}"])
    table_rows.append(["Kannel opensmppbox", "not run: not packaged", "-", "-"])
    table = Table(
        f"submit_sm accepted/s, one trx bind, window {WINDOW}, {n} a round, best of {args.rounds}",
        ["server", "accepted/s", "vs bare", "client µs/msg"],
        table_rows,
        note="opensmppbox is not packaged in Debian 12 (apt-cache policy is empty). Jasmin "
        "runs with the local RabbitMQ and Redis (their CPU is not in the table).",
    )
    print(table.render())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--no-jasmin", dest="jasmin", action="store_false", help="leave out Jasmin's row"
    )
    uvloop.run(main(parser.parse_args()))
