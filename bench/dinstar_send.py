"""Dinstar ``send_sms`` with 128 numbers per request against a real ``simgate serve``.

    .venv/bin/python bench/dinstar_send.py [--seconds 10] [--role serve|run] [--pg URL]

Numbers accepted per second = requests/s x 128 (every request's ``error_code`` 202 is checked
by the wrk Lua script; every body has different numbers). HTTP Basic auth: the server caches
a successful scrypt verification for 60 s (auth.py), so this measures the send path, not
scrypt. Baselines in the same run, same server: ``GET /api/get_port_info`` (auth + envelope
+ dialect, no database) and ``GET /healthz`` (one SELECT 1); the single-number send shows the
per-request cost. The server's CPU per request (from /proc) is printed too: on a shared
machine it is steadier than the wall-clock rates.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import GATEWAY_PASSWORD, GATEWAY_USER, prepare_gateway_user, server_settings_data
from bench.common import plain_table as table
from bench.wrk_report import LUA_DONE, LUA_THREADS, wrk_report
from simgate.testing.procs import SimgateProcess, free_port, write_config

USER, PASSWORD = GATEWAY_USER, GATEWAY_PASSWORD
NUMBERS = 128

LUA = (
    LUA_THREADS
    + """
function request()
  n = n + 1
  local items = {}
  for i = 1, %(numbers)d do
    local k = n * %(numbers)d + i
    items[i] = string.format('{"number":"86138%%02d%%06d","user_id":%%d}', id, k %% 1000000, k)
  end
  local body = '{"text":"bench message","param":[' .. table.concat(items, ",") .. ']}'
  return wrk.format("POST", "/api/send_sms", {["Content-Type"] = "application/json",
    ["Authorization"] = "%(auth)s"}, body)
end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"error_code":%(want)s', 1, true) then
    bad = bad + 1
    sample = body
  end
end
"""
    + LUA_DONE
)

GET_LUA = """
function request()
  return wrk.format("GET", "%(path)s", {["Authorization"] = "%(auth)s"})
end
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads (``/proc/PID/stat`` fields 14, 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SERVER_PID = 0
CPU_PER_REQ: dict[str, float] = {}


def wrk(base: str, script: str, path: str, seconds: float) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, bad answers) from ``wrk -t2 -c16``.

    Also records the server's CPU ms per request (CPU_PER_REQ[script]): on a shared machine
    the steadier figure, since wall-clock rates depend on what else holds the cores.
    """
    cpu0 = cpu_seconds(SERVER_PID) if SERVER_PID else 0.0
    lua = Path(tempfile.mkstemp(suffix=".lua")[1])
    lua.write_text(script, encoding="utf-8")
    cmd = ["wrk", "-t2", "-c16", f"-d{int(seconds)}s", "--latency", "-s", str(lua), base + path]
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    lua.unlink()
    done = re.search(r"(\d+) requests in", out)
    if SERVER_PID and done and int(done.group(1)):
        CPU_PER_REQ[script] = (cpu_seconds(SERVER_PID) - cpu0) * 1000 / int(done.group(1))
    return wrk_report(out, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--role", choices=["serve", "run"], default="serve")
    parser.add_argument("--pg", help="PostgreSQL URL of an empty database instead of SQLite")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="dinstar_send_"))
    url = args.pg or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    port = free_port()
    asyncio.run(prepare_gateway_user(tmp, url, port))
    cfg = write_config(tmp / "simgate.toml", server_settings_data(tmp, url, port))
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    send128 = LUA % {"numbers": NUMBERS, "auth": auth, "want": "202"}
    send1 = LUA % {"numbers": 1, "auth": auth, "want": "202"}
    # Baseline: auth + envelope + dialect, no database (ports come from the lines).
    queue = GET_LUA % {"path": "/api/get_port_info?port=0&info_type=imsi", "auth": auth}
    proc = SimgateProcess([args.role], workdir=tmp, config=cfg, port=port)
    proc.start()
    global SERVER_PID  # noqa: PLW0603 (a one-shot script)
    SERVER_PID = proc.pid
    try:
        proc.wait_healthy(60)
        base = proc.url
        wrk(base, queue, "/api/get_port_info?port=0&info_type=imsi", 2)  # warm up
        r128 = wrk(base, send128, "/api/send_sms", args.seconds)
        r1 = wrk(base, send1, "/api/send_sms", args.seconds)
        rq = wrk(base, queue, "/api/get_port_info?port=0&info_type=imsi", args.seconds)
        health = GET_LUA % {"path": "/healthz", "auth": auth}
        rh = wrk(base, health, "/healthz", args.seconds)
    finally:
        proc.stop()
    cpu = [CPU_PER_REQ.get(x, float("nan")) for x in (send128, send1, queue, health)]
    rows: list[tuple[str, tuple[float, float, float, int], int, float]] = [
        ("send_sms, 128 numbers", r128, NUMBERS, cpu[0]),
        ("send_sms, 1 number", r1, 1, cpu[1]),
        ("baseline: get_port_info (no DB)", rq, 0, cpu[2]),
        ("baseline: GET /healthz", rh, 0, cpu[3]),
    ]
    cells = [
        [
            name,
            f"{r[0]:,.0f}",
            f"{r[0] * n:,.0f}" if n else "-",
            *_cells(r),
            f"{r[0] / rq[0]:.2f}",
            f"{c:.2f}",
            f"{1000 / c * n:,.0f}" if n else "-",
        ]
        for name, r, n, c in rows
    ]
    backend = "PostgreSQL" if args.pg else "SQLite"
    print(
        table(
            f"dinstar send_sms, simgate {args.role} on {backend}, wrk -t2 -c16, "
            f"{args.seconds:g} s per row",
            [
                "what",
                "req/s",
                "numbers/s",
                "p50 ms",
                "p99 ms",
                "bad",
                "req/s vs baseline",
                "server CPU ms/req",
                "numbers per CPU-s",
            ],
            cells,
        )
    )
    shutil.rmtree(tmp, ignore_errors=True)


def _cells(r: tuple[float, float, float, int]) -> list[str]:
    return [f"{r[1]:.1f}", f"{r[2]:.1f}", str(r[3])]


if __name__ == "__main__":
    main()
