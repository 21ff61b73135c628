"""HTTP single-message sends against the no-database ceiling of the same ``simgate run``.

    scripts/bench --only http_send [--backend sqlite|pg] [--quick]
    scripts/bench --only http_send_one ...      # the same against ``simgate run --one-process``
    scripts/bench --only http_send_serve ...    # the same against ``simgate serve``

One real ``simgate run`` per backend (HTTP API and worker with the sim line; its default mode:
the worker in a child process on SQLite with 2+ CPUs, cli/worker_child.py worker_mode), loaded
by ``wrk`` (a separate process; every request body differs, so the itniotech replay rule of
spec §7 never short-circuits a send). Rows, each at 32 connections and at 1 connection:
- ceiling: the OpenVox ``/sms/send`` request of the send row with ``"mode":2``, refused
  after its body is read and parsed, its login checked and its fields read, before any
  database work: the same request's no-database cost, the issue's "no-database HTTP ceiling
  of the same process" for a send. Until 2026-12-05 the ceiling row was ``GET /healthz`` (one
  ``SELECT 1``), chosen on 2026-12-04 as "the cheapest route there is"; since the 404 and the
  OpenVox path were made cheap (stop 28) both answer ~1.6x as many requests as it (that
  day's run: 20,000-21,000 against 12,800 req/s), so it flattered every "vs ceiling" ratio
  (as ``GET /openapi.json`` had before it, whose large body made it 1.6-1.9x slower than
  ``/healthz``). Both are rows of their own, as is a ``GET`` no route serves (a 404);
- OpenVox ``/sms/send`` with one number (body credentials, async mode);
- itniotech ``/sms/sendSms`` with one number (signed headers; a replay claim and a send);
- the ceiling's request again, after the others: "vs ceiling" is to the mean of its two
  readings, and the table's note says how far apart they were (on a shared 2-core machine
  the same request read 9,700 to 17,900 req/s within minutes, 2026-12-05).
Issue 15 aims: a send >= 0.5 of the ceiling (column "vs ceiling") and >= 1,500 req/s on a
quiet machine; latency at 1 connection is the low-load cost group commit must not raise.
"CPU ms /1k req" is the CPU of the simgate processes (a worker child's too) per request at 32
connections: on a busy machine req/s mostly measures fsync waits and other work, the CPU a
request costs much less.

``http_send_one`` runs ``simgate run --one-process`` (HTTP and worker take turns in one
process: ``run``'s default until 2026-12-05, and on one CPU); ``http_send_split`` runs
``simgate run --worker-process``, SQLite's default named (``http_send`` on 2+ CPUs;
kept so that commits from before the default changed compare row by row). ``simgate serve``
(``http_send_serve``) runs the API alone: beside ``run`` it tells the cost of a send from the
cost of the worker dispatching what was sent.
``measure(..., commit="os")`` runs it with ``commit = "os"`` (README "When a write counts as
committed": a 2xx once the OS, not the disk, has the commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import GATEWAY_PASSWORD, GATEWAY_USER, Table, opened, scratch_url
from simgate.domain.accounts import AppKind
from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port, write_config

# An OpenVox one-number send (every answer is HTTP 200, the outcome its "code", spec §7).
# With mode 0 (asynchronous) it is sent: code 200. With mode 2 (neither 0 nor 1) the same
# request is refused after its body is read and parsed, its login checked and its fields
# read, before any database work: code 400, the send's own no-database cost (the ceiling).
_OPENVOX = """
local counter = 1
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args) n = 0 bad = 0 end
function request()
  n = n + 1
  local body = '{"username":"%(user)s","password":"%(password)s",'
    .. '"dest_num":"8613800138000","msg":"bench ' .. id .. '-' .. n .. '","mode":%(mode)d}'
  return wrk.format("POST", "/sms/send", {["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"code":%(code)d', 1, true) then bad = bad + 1 end
end
"""

_ITNIO = """
local signs = {%(signs)s}
local counter = 1
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args) n = 0 bad = 0 end
function request()
  n = n + 1
  local body = '{"appId":"%(app)s","numbers":"8613800138000","content":"one '
    .. id .. '-' .. n .. '"}'
  -- In wrk.headers itself: wrk.format sends the table it is given instead of wrk.headers.
  local ts = tostring(os.time())
  wrk.headers["Timestamp"] = ts
  wrk.headers["Sign"] = signs[ts]
  return wrk.format("POST", "/sms/sendSms", nil, body)
end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"status":"0"', 1, true) then bad = bad + 1 end
end
"""

_NOT_FOUND = """
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 404 then bad = bad + 1 end
end
"""

_DONE = """
local threads = {}
local old_setup = setup
function setup(thread)
  if old_setup then old_setup(thread) end
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get("bad") or 0) end
  io.write("BAD " .. total .. "\\n")
end
"""

MASTER_KEY = "http-send-bench-master-key-0123456789"


@dataclass(frozen=True, slots=True)
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    bad: int
    requests: int = 0  # completed in the run


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process ``pid`` used so far; NaN where /proc is not.

    Per request, this is the cost a send adds whatever the machine's load: req/s on a busy
    2-core machine mostly says how long the fsyncs and the other helpers' work took."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` and its descendants (``run``'s worker child) so far."""
    children: list[str] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):  # each thread's children
        with contextlib.suppress(OSError):
            children += task.read_text(encoding="ascii").split()
    return process_cpu_s(pid) + sum(tree_cpu_s(int(c)) for c in children)


@dataclass(frozen=True, slots=True)
class Tenant:
    app_id: str
    api_key: str
    api_secret: str

    def sign(self, ts: str) -> str:
        return hashlib.md5((self.api_key + self.api_secret + ts).encode()).hexdigest()

    def signs_lua(self, seconds: float) -> str:
        """A Lua table of the Sign of every Timestamp (seconds) from now until well past a
        run of ``seconds``: the itniotech script sends the current second's, as clients do
        (a fresh Timestamp per request; replay records are keyed by it since migration
        0016, so one Timestamp for a whole run would stand for no real load)."""
        now = int(time.time())
        stamps = (str(t) for t in range(now - 5, now + round(seconds) + 120))
        return ", ".join(f'["{ts}"] = "{self.sign(ts)}"' for ts in stamps)

    def headers(self) -> dict[str, str]:
        ts = str(int(time.time()))
        sign = self.sign(ts)
        return {
            "Content-Type": "application/json;charset=UTF-8",
            "Api-Key": self.api_key,
            "Timestamp": ts,
            "Sign": sign,
        }


def server_settings(workdir: Path, url: str, port: int, commit: str = "disk") -> dict[str, object]:
    """The settings of the measured gateway (bench/send_cost.py opens the same in process)."""
    return {
        "commit": commit,
        "data_dir": str(workdir / "data"),
        "database_url": url,
        "master_key": MASTER_KEY,
        "log_level": "warning",
        "demo": {"create": False},
        "billing": {"default_sms_price": "0.001"},
        "http": {"port": port},
    }


async def _tenant(workdir: Path, url: str, port: int) -> Tenant:
    """A funded account with an itniotech app and key, and the OpenVox gateway user."""
    async with opened(load_settings(None, overrides=server_settings(workdir, url, port))) as rt:
        sv = rt.services
        assert sv is not None
        account = await sv.accounts.create_account(name="bench", balance="100000000")
        app = await sv.accounts.create_app(account.id, kind=AppKind.SMS)
        key = await sv.accounts.create_key(account.id)
        await sv.accounts.create_user(account.id, username=GATEWAY_USER, password=GATEWAY_PASSWORD)
    return Tenant(app.app_id, key.key, key.secret)


def _wrk(
    url: str, *, conns: int, seconds: float, script: str | None, headers: dict[str, str]
) -> Load:
    threads = 1 if conns == 1 else 2
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    with tempfile.TemporaryDirectory() as tmp:
        if script is not None:
            lua = Path(tmp) / "load.lua"
            lua.write_text(script + _DONE, encoding="utf-8")
            cmd += ["-s", str(lua)]
        out = subprocess.run(
            [*cmd, url], capture_output=True, text=True, timeout=seconds + 60, check=True
        ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"BAD (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    done = re.search(r"(\d+) requests in", out)
    return Load(
        rps=float(rps.group(1)) if rps else 0.0,
        p50_ms=_latency(out, "50"),
        p99_ms=_latency(out, "99"),
        # A script counts its own refusals (the ceiling's expects its 404); without one,
        # anything but 2xx/3xx is bad. Adding both counted a script's refusal twice.
        bad=int(bad.group(1)) if bad else int(non2xx.group(1)) if non2xx else 0,
        requests=int(done.group(1)) if done else 0,
    )


def _latency(out: str, percent: str) -> float:
    m = re.search(percent + r"(?:\.000)?%\s+([\d.]+)(us|ms|s)\b", out)
    if m is None:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


async def measure(
    backend: str, workdir: Path, seconds: float, role: str = "run", commit: str = "disk"
) -> Table:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    async with scratch_url(backend, workdir) as url:
        port = free_port()
        tenant = await _tenant(workdir, url, port)
        cfg = write_config(workdir / "simgate.toml", server_settings(workdir, url, port, commit))
        proc = SimgateProcess(role.split(), workdir=workdir, config=cfg, port=port)
        proc.start()
        try:
            await asyncio.to_thread(proc.wait_healthy, 60)
            rows = await asyncio.to_thread(_rows, proc.url, tenant, seconds, proc.pid)
        finally:
            await asyncio.to_thread(proc.stop)
    moved = drift(rows)
    return Table(
        f"http_send [{backend}]: `simgate {role}`"
        + (", commit = os" if commit == "os" else "")
        + f", wrk, {seconds:g} s per cell",
        [
            "route",
            "req/s (32 conns)",
            "p50 ms (32)",
            "p99 ms (32)",
            "vs ceiling",
            "req/s (1 conn)",
            "p50 ms (1)",
            "p99 ms (1)",
            "CPU ms /1k req (32)",
            "bad",
        ],
        rows,
        "aim (issue 15): sends >= 0.5 of the ceiling, >= 1,500 req/s on a quiet machine; "
        "CPU: of the simgate processes (the worker too, in this process or its child) "
        "per 1,000 requests at 32 connections, steadier than req/s on a busy machine; "
        "vs ceiling: to the mean of the ceiling's two readings, which differ by "
        f"{moved:.0%}"
        + (
            " (the machine changed speed during the run: read the CPU column)"
            if moved > 0.1
            else ""
        ),
    )


def _rows(base: str, tenant: Tenant, seconds: float, pid: int) -> list[Sequence[Any]]:
    login = {"user": GATEWAY_USER, "password": GATEWAY_PASSWORD}
    openvox = _OPENVOX % {**login, "mode": 0, "code": 200}
    refused = _OPENVOX % {**login, "mode": 2, "code": 400}
    itnio = _ITNIO % {"app": tenant.app_id, "signs": tenant.signs_lua(seconds * 10 + 60)}
    cases: list[tuple[str, str, str | None, bool]] = [
        ("ceiling: openvox /sms/send refused before the DB", "/sms/send", refused, False),
        ("GET /healthz (one SELECT 1)", "/healthz", None, False),
        ("GET /openapi.json (no DB, large body)", "/openapi.json", None, False),
        ("GET of no route (no DB, a 404)", "/no-such-route", _NOT_FOUND, False),
        ("openvox /sms/send, 1 number", "/sms/send", openvox, False),
        ("itnio sendSms, 1 number", "/sms/sendSms", itnio, True),
    ]
    # Warm up: connections, caches, the id block, the first statement compilations.
    for _, path, script, signed in cases:
        _wrk(base + path, conns=4, seconds=1, script=script, headers=_headers(tenant, signed))
    measured: list[Cell] = []
    for name, path, script, signed in [*cases, (AGAIN, *cases[0][1:])]:
        before = tree_cpu_s(pid)
        wide = _wrk(
            base + path, conns=32, seconds=seconds, script=script, headers=_headers(tenant, signed)
        )
        cpu_s = tree_cpu_s(pid) - before
        one = _wrk(
            base + path, conns=1, seconds=seconds, script=script, headers=_headers(tenant, signed)
        )
        measured.append(Cell(name, wide, one, cpu_s))
    return rows_of(measured)


# The ceiling's request measured once more after every other row: on a shared machine its
# req/s moved by a quarter within minutes (2026-12-05), so the ratios are to the mean of the
# two readings and the table says when they differ.
AGAIN = "ceiling again, after the other rows"


@dataclass(frozen=True, slots=True)
class Cell:
    """One row's measurements: at 32 connections, at 1, and the CPU during the 32."""

    name: str
    wide: Load
    one: Load
    cpu_s: float


def rows_of(cells: Sequence[Cell]) -> list[Sequence[Any]]:
    """The table's rows of ``cells``: the first and the last (:data:`AGAIN`) are the ceiling
    measured before and after the others, and "vs ceiling" is each row's req/s at 32
    connections over the mean of those two."""
    ceiling = (cells[0].wide.rps + cells[-1].wide.rps) / 2 if cells else 0.0
    return [
        [
            c.name,
            c.wide.rps,
            c.wide.p50_ms,
            c.wide.p99_ms,
            c.wide.rps / ceiling if ceiling else 0.0,
            c.one.rps,
            c.one.p50_ms,
            c.one.p99_ms,
            c.cpu_s * 1e6 / c.wide.requests if c.wide.requests else float("nan"),
            c.wide.bad + c.one.bad,
        ]
        for c in cells
    ]


def drift(rows: Sequence[Sequence[Any]]) -> float:
    """How far the ceiling's second reading is from its first (0.1 = 10 %)."""
    first, last = rows[0][1], rows[-1][1]
    return abs(last - first) / first if first else 0.0


def _headers(tenant: Tenant, signed: bool) -> dict[str, str]:
    return tenant.headers() if signed else {}
