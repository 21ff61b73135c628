"""itniotech sendSms throughput against a real ``simgate serve`` (SQLite in a temp dir).

    .venv/bin/python bench/itnio_send.py [--seconds 10] [--pg URL]

1. Numbers accepted per second by ``POST /sms/sendSms`` with 1 000 numbers per request
   (4 concurrent clients). Ceiling: the same SendService.send calls in-process (no HTTP,
   no JSON, no auth) on a fresh database of the same kind.
2. Single-number ``sendSms`` requests per second with 32 concurrent connections, measured by
   ``wrk`` (a separate process). Beside it: ``GET /healthz`` of the same server (one SELECT
   1) and ``getBalance`` (auth + one read), for reference. Neither is the no-database
   ceiling of issue 15: since no-database requests answer ~1.6x as many as ``/healthz``,
   ``bench/http_send.py`` measures a send against the same request refused before the
   database, and its "vs ceiling" is the ratio to read.
Each request carries a different body, so the replay rule (spec §7) never short-circuits.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import plain_table as table
from bench.itnio_support import (
    Creds,
    create_tenant,
    settings_data,
    start_server,
)
from simgate.runtime import Runtime
from simgate.services.sending import Recipient, SendRequest
from simgate.settings import load_settings

NUMBERS = ",".join(f"86138{i:08d}" for i in range(1000))


async def http_bulk(url: str, creds: Creds, seconds: float, clients: int = 4) -> tuple[float, int]:
    accepted = 0
    errors = 0
    stop = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def worker(w: int) -> None:
            nonlocal accepted, errors
            n = 0
            while time.perf_counter() < stop:
                n += 1
                body = {"appId": creds.app_id, "numbers": NUMBERS, "content": f"bulk {w}-{n}"}
                r = await client.post("/sms/sendSms", json=body, headers=creds.headers())
                data = r.json()
                if data["status"] == "0":
                    accepted += int(data["success"])
                else:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(clients)))
        elapsed = time.perf_counter() - start
    return accepted / elapsed, errors


async def service_bulk(workdir: Path, url: str, seconds: float, clients: int = 4) -> float:
    creds = await create_tenant(workdir, url, name="ceiling")
    rt = Runtime(load_settings(None, overrides=settings_data(workdir, url)), role="admin")
    sv = await rt.open(migrate=False)
    try:
        account = await sv.accounts.get_account(creds.account_id)
        app = await sv.accounts.get_app(creds.app_id)
        numbers = NUMBERS.split(",")
        accepted = 0
        stop = time.perf_counter() + seconds

        async def worker(w: int) -> None:
            nonlocal accepted
            n = 0
            while time.perf_counter() < stop:
                n += 1
                out = await sv.sending.send(
                    SendRequest(
                        account=account,
                        dialect="itnio",
                        text=f"bulk {w}-{n}",
                        recipients=[Recipient(x, text=f"bulk {w}-{n}", sender="") for x in numbers],
                        app=app,
                    )
                )
                accepted += len(out.accepted)

        start = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(clients)))
        return accepted / (time.perf_counter() - start)
    finally:
        await rt.close()


WRK_SEND = """
local counter = 1
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  n = 0
  bad = 0
end
function request()
  n = n + 1
  local body = '{"appId":"%(app)s","numbers":"8613800138000","content":"one '
    .. id .. '-' .. n .. '"}'
  return wrk.format("POST", "/sms/sendSms", nil, body)
end
function response(status, headers, body)
  if not string.find(body, '"status":"0"', 1, true) then bad = bad + 1 end
end
"""


def wrk(
    url: str, path: str, creds: Creds, seconds: float, script: str | None
) -> tuple[float, float]:
    """Requests per second and p99 latency (ms) from ``wrk -t2 -c32``."""
    cmd = ["wrk", "-t2", "-c32", f"-d{int(seconds)}s", "--latency"]
    for k, v in creds.headers().items():
        cmd += ["-H", f"{k}: {v}"]
    if script is not None:
        lua = Path(tempfile.mkstemp(suffix=".lua")[1])
        lua.write_text(script % {"app": creds.app_id}, encoding="utf-8")
        cmd += ["-s", str(lua)]
    out = subprocess.run(
        [*cmd, url + path], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return rps, (float(p99.group(1)) * scale[p99.group(2)]) if p99 else float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--pg", help="PostgreSQL URL (a fresh database) instead of SQLite")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="itnio_send_"))
    url = args.pg or f"sqlite+aiosqlite:///{tmp / 'http.db'}"
    creds = await create_tenant(tmp, url)
    proc = start_server(tmp, url)
    try:
        async with httpx.AsyncClient(base_url=proc.url) as c:  # warm up
            await c.post(
                "/sms/sendSms",
                json={"appId": creds.app_id, "numbers": NUMBERS, "content": "warm"},
                headers=creds.headers(),
            )
        bulk_rate, bulk_err = await http_bulk(proc.url, creds, args.seconds)
        rows = []
        if shutil.which("wrk"):
            send_rps, send_p99 = wrk(proc.url, "/sms/sendSms", creds, args.seconds, WRK_SEND)
            health_rps, health_p99 = wrk(proc.url, "/healthz", creds, args.seconds, None)
            bal_rps, bal_p99 = wrk(proc.url, "/sms/getBalance", creds, args.seconds, None)
            rows = [
                [
                    "sendSms, 1 number, 32 conns (wrk)",
                    f"{send_rps:,.0f} req/s",
                    f"p99 {send_p99:.1f} ms",
                ],
                [
                    "  reference: GET /healthz (1 SELECT), same server",
                    f"{health_rps:,.0f} req/s",
                    f"p99 {health_p99:.1f} ms",
                ],
                [
                    "  reference: getBalance (auth + 1 read)",
                    f"{bal_rps:,.0f} req/s",
                    f"p99 {bal_p99:.1f} ms",
                ],
                ["  sendSms / healthz", f"{send_rps / health_rps:.2f}", ""],
            ]
    finally:
        proc.stop()
    ceiling_dir = tmp / "ceiling"
    ceiling_dir.mkdir()
    ceiling_url = args.pg or f"sqlite+aiosqlite:///{ceiling_dir / 'svc.db'}"
    svc_rate = await service_bulk(ceiling_dir, ceiling_url, args.seconds)
    head = [
        [
            "POST sendSms, 1000 numbers, 4 clients",
            f"{bulk_rate:,.0f} numbers/s",
            f"errors {bulk_err}",
        ],
        ["  ceiling: SendService.send in-process", f"{svc_rate:,.0f} numbers/s", ""],
        ["  HTTP / ceiling", f"{bulk_rate / svc_rate:.2f}", ""],
    ]
    backend = "PostgreSQL" if args.pg else "SQLite"
    print(
        table(
            f"itnio send benchmark ({backend}, {args.seconds:g} s per row)",
            ["what", "rate", ""],
            head + rows,
        )
    )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
