"""OpenVox ``/sms/send`` throughput against a real ``simgate serve`` (or ``run``) subprocess.

    .venv/bin/python bench/openvox_send.py [--seconds 10] [--role serve|run] [--pg URL]

Single-number ``/sms/send`` requests (async mode) per second with 32 concurrent connections,
driven by ``wrk`` with a Lua script (a separate process; every body differs). Ceilings on
the same server: ``/sms/get_valid_spans`` (the same JSON envelope and body-credential auth,
answered from memory: the cost of the HTTP + dialect path without the store), and
``GET /healthz`` (one SELECT 1). Every response's ``code`` is checked by the Lua script.
Core ceiling: the same single-number ``SendService.send`` calls from 32 tasks in-process (no
HTTP, JSON or auth) on a fresh database of the same kind (SQLite only).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.common import GATEWAY_PASSWORD, GATEWAY_USER, prepare_gateway_user, server_settings_data
from bench.common import plain_table as table
from bench.wrk_report import LUA_DONE, LUA_THREADS, wrk_report
from simgate.runtime import Runtime
from simgate.services.sending import Recipient, SendRequest
from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port, write_config

USER, PASSWORD = GATEWAY_USER, GATEWAY_PASSWORD

LUA = (
    LUA_THREADS
    + """
function request()
  n = n + 1
  local body = '{"username":"%(user)s","password":"%(password)s",%(fields)s}'
  body = string.gsub(body, "#N#", id .. "-" .. n)
  return wrk.format("POST", "%(path)s", {["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"code":200', 1, true) then
    bad = bad + 1
    sample = body
  end
end
"""
    + LUA_DONE
)

SEND = '"dest_num":"8613800138000","msg":"bench #N#","mode":0'


async def service_rate(workdir: Path, url: str, seconds: float, clients: int = 32) -> float:
    """Single-number sends per second straight into SendService (the core's ceiling)."""
    workdir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (set-up, before timing)
    settings = load_settings(None, overrides=server_settings_data(workdir, url, 0))
    rt = Runtime(settings, role="admin")
    sv = await rt.open()
    try:
        account = await sv.accounts.create_account(name="core", balance="100000000")
        done = 0
        stop = time.perf_counter() + seconds

        async def client(c: int) -> None:
            nonlocal done
            while time.perf_counter() < stop:
                await sv.sending.send(
                    SendRequest(
                        account=account,
                        dialect="openvox",
                        text=f"core {c}-{done}",
                        recipients=[Recipient("8613800138000")],
                        line="sim",
                        dial_as_given=True,
                    )
                )
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(clients)))
        return done / (time.perf_counter() - start)
    finally:
        await rt.close()


def wrk(
    base: str, path: str, fields: str | None, seconds: float
) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, bad answers) from ``wrk -t2 -c32``."""
    cmd = ["wrk", "-t2", "-c32", f"-d{int(seconds)}s", "--latency"]
    if fields is not None:
        lua = Path(tempfile.mkstemp(suffix=".lua")[1])
        lua.write_text(
            LUA % {"user": USER, "password": PASSWORD, "fields": fields, "path": path},
            encoding="utf-8",
        )
        cmd += ["-s", str(lua)]
    out = subprocess.run(
        [*cmd, base + path], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    return wrk_report(out, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--role", choices=["serve", "run"], default="serve")
    parser.add_argument("--pg", help="PostgreSQL URL of an empty database instead of SQLite")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="openvox_send_"))
    url = args.pg or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    port = free_port()
    asyncio.run(prepare_gateway_user(tmp, url, port))
    cfg = write_config(tmp / "simgate.toml", server_settings_data(tmp, url, port))
    proc = SimgateProcess([args.role], workdir=tmp, config=cfg, port=port)
    proc.start()
    try:
        proc.wait_healthy(60)
        base = proc.url
        wrk(base, "/sms/get_valid_spans", '"x":0', 2)  # warm up: the auth cache and connections
        spans = wrk(base, "/sms/get_valid_spans", '"x":0', args.seconds)
        send = wrk(base, "/sms/send", SEND, args.seconds)
        health = wrk(base, "/healthz", None, args.seconds)
    finally:
        proc.stop()
    core = (
        None
        if args.pg
        else asyncio.run(
            service_rate(tmp / "core", f"sqlite+aiosqlite:///{tmp / 'core.db'}", args.seconds)
        )
    )
    rows = [
        ["/sms/send, 1 number, async", *_cells(send)],
        ["ceiling: /sms/get_valid_spans (auth, no DB)", *_cells(spans)],
        ["ceiling: GET /healthz (SELECT 1)", *_cells(health)],
    ]
    if core is not None:
        rows.append(["core: SendService.send in-process, 32 tasks", f"{core:,.0f}", "-", "-", "-"])
    backend = "PostgreSQL" if args.pg else "SQLite"
    print(
        table(
            f"openvox /sms/send, simgate {args.role} on {backend}, wrk -t2 -c32, "
            f"{args.seconds:g} s per row",
            ["what", "req/s", "p50 ms", "p99 ms", "bad", "vs spans"],
            [[*r, f"{float(r[1].replace(',', '')) / spans[0]:.2f}"] for r in rows],
        )
    )
    shutil.rmtree(tmp, ignore_errors=True)


def _cells(r: tuple[float, float, float, int]) -> list[str]:
    return [f"{r[0]:,.0f}", f"{r[1]:.1f}", f"{r[2]:.1f}", str(r[3])]


if __name__ == "__main__":
    main()
