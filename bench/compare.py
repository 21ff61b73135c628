"""simgate, Jasmin and Kannel side by side, behind the same SMSC, in one table (issue 15).

    .venv/bin/python -m bench.compare [--seconds 10] [--connections 8] [--only simgate,kannel]
    scripts/bench --only compare

Each system in turn sends single-message HTTP requests for ``--seconds`` (``wrk``, one
thread, ``--connections`` connections, every request a different number) to the same kind
of SMSC, a fresh ``bench/fast_smsc.py`` that acks every submit_sm:

* simgate: ``simgate run`` (SQLite), an SMPP line (one transceiver, window 64), OpenVox
  ``POST /sms/send`` with one number, asynchronous mode; the ``_os`` rows with ``commit =
  "os"`` (a 2xx once the OS has the commit, not the disk: README "When a write counts as
  committed"): nearer Kannel's memory queue, which a kill loses, than "disk";
* Kannel 1.4.5 (Debian ``kannel``): bearerbox + smsbox, SMPP transceiver with 64 pending,
  ``GET /cgi-bin/sendsms``;
* Jasmin 0.11.1 (PyPI ``jasmin`` in its own venv under ~/.cache/simgate-bench, with the
  local RabbitMQ and Redis), configured through jCli: an SMPP client connector, a user, a
  default MT route; ``GET /send``.

Columns: HTTP requests/s (wrk), messages/s through to the SMSC (accepted messages over the
time from the first request until the SMSC has answered all of them), p50/p99 accept
latency (wrk), CPU seconds per 1,000 messages: user + system time from /proc of the
system's processes over that same time (Jasmin's includes RabbitMQ and Redis: it cannot
send without them; they serve nobody else during its turn).

Peers it lacks are installed: Jasmin with pip into its own venv; ``kannel``, ``wrk``,
``rabbitmq-server``, ``redis-server`` with apt-get only when missing. Everything it starts is
stopped after, by process id. A system that cannot be run gets a row saying why.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import GATEWAY_PASSWORD, GATEWAY_USER, Table, prepare_gateway_user
from bench.common import server_settings_data as simgate_settings
from bench.smpp_throughput import KANNEL_CONF, SmscProcess, _proc_cpu
from bench.wrk_report import LUA_DONE, LUA_THREADS
from simgate.testing.procs import SimgateProcess, free_port, write_config

CACHE = Path(os.environ.get("SIMGATE_BENCH_CACHE", Path.home() / ".cache" / "simgate-bench"))
JASMIN_VENV = CACHE / "jasmin-venv"
JASMIN_VERSION = "0.11.1"
RABBITMQ, REDIS = 5672, 6379


@dataclass
class Row:
    system: str
    http_rate: float = 0.0
    through: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    cpu_per_1000: float = 0.0
    messages: int = 0
    note: str = ""

    def cells(self) -> list[object]:
        if self.note and not self.messages:
            return [self.system, "-", "-", "-", "-", "-", "-", self.note]
        return [
            self.system, round(self.http_rate), round(self.through), f"{self.p50_ms:.1f}",
            f"{self.p99_ms:.1f}", f"{self.cpu_per_1000:.2f}", self.messages, self.note,
        ]  # fmt: skip


@dataclass(frozen=True)
class Target:
    """How wrk sends one message to a system, and what a success answer contains."""

    url: str
    method: str  # GET: ``query`` with #N# replaced; POST: JSON ``body`` with #N#
    template: str
    ok_text: str


# ---- the HTTP load (wrk) -----------------------------------------------------------------

# The threads' numbering and the tally of wrong answers are bench/wrk_report.py's.
LUA = (
    LUA_THREADS
    + """
function request()
  n = n + 1
  local number = tostring(8613700000000 + id * 10000000 + n)
  local text = string.gsub(TEMPLATE, "#N#", number)
  if METHOD == "GET" then
    return wrk.format("GET", PATH .. "?" .. text)
  end
  return wrk.format("POST", PATH, {["Content-Type"] = "application/json"}, text)
end
function response(status, headers, body)
  if status >= 300 or not string.find(body, OK_TEXT, 1, true) then
    bad = bad + 1
    sample = body
  end
end
"""
    + LUA_DONE
)


def _lua(target: Target, path: str, workdir: Path) -> Path:
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    head = (
        f"TEMPLATE = {quoted(target.template)}\nMETHOD = {quoted(target.method)}\n"
        f"PATH = {quoted(path)}\nOK_TEXT = {quoted(target.ok_text)}\n"
    )
    script = workdir / "send.lua"
    script.write_text(head + LUA, encoding="utf-8")
    return script


@dataclass(frozen=True)
class WrkResult:
    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    bad: int
    sample: str


def run_wrk(target: Target, seconds: float, connections: int, workdir: Path) -> WrkResult:
    split = target.url.split("/", 3)
    base, path = "/".join(split[:3]), "/" + (split[3] if len(split) > 3 else "")
    script = _lua(target, path, workdir)
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(script)]
    out = subprocess.run(
        [*cmd, base + path], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def latency(p: str) -> float:
        m = re.search(p + r"%\s+([\d.]+)(us|ms|s)\b", out)
        return float(m.group(1)) * scale[m.group(2)] if m else float("nan")

    def number(pattern: str) -> str:
        m = re.search(pattern, out)
        if m is None:
            raise RuntimeError(f"wrk output without {pattern!r}: {out[-300:]}")
        return m.group(1)

    sample = re.search(r"SAMPLE (.*)", out)
    return WrkResult(
        requests=int(number(r"(\d+) requests in")),
        rate=float(number(r"Requests/sec:\s+([\d.]+)")),
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        bad=int(number(r"BAD (\d+)")),
        sample=sample.group(1)[:200] if sample else "",
    )


async def measure(
    name: str,
    target: Target,
    smsc: SmscProcess,
    pids: Callable[[], list[int]],
    args: argparse.Namespace,
    workdir: Path,
) -> Row:
    """wrk for ``--seconds``, then wait until the SMSC has answered every accepted one."""
    # Warm-up: connections, caches, the first bind; not counted.
    warm = run_wrk(target, 1, 2, workdir)
    if warm.requests and warm.bad == warm.requests:
        raise RuntimeError(f"every warm-up request failed: {warm.sample}")
    if not await smsc.wait_answered(warm.requests - warm.bad, 60):
        raise RuntimeError(f"the SMSC saw {smsc.answered()} of the warm-up's messages")
    before = smsc.answered()
    watched = pids()
    cpu = sum(_proc_cpu(p) for p in watched)
    start = time.perf_counter()
    result = await asyncio.to_thread(run_wrk, target, args.seconds, args.connections, workdir)
    accepted = result.requests - result.bad
    if not await smsc.wait_answered(before + accepted, 300):
        raise RuntimeError(f"the SMSC saw {smsc.answered() - before} of {accepted} messages")
    elapsed = time.perf_counter() - start
    cpu = sum(_proc_cpu(p) for p in watched) - cpu
    note = f"{result.bad} refused: {result.sample}" if result.bad else ""
    return Row(
        name,
        http_rate=result.rate,
        through=accepted / elapsed,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        cpu_per_1000=cpu / max(accepted, 1) * 1000,
        messages=accepted,
        note=note,
    )


# ---- processes we start ------------------------------------------------------------------


@contextlib.contextmanager
def started(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None,
            log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:  # fmt: skip
    """A process of ours, stopped after (SIGTERM, then SIGKILL) by its pid."""
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if log is not None:
            out.close()  # type: ignore[union-attr]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


async def _wait_listening(port: int, limit: float, proc: subprocess.Popen[bytes]) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if _listening(port):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode}")
        await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {limit:g} s")


def _listener_pid(port: int) -> int | None:
    """The process listening on 127.0.0.1:``port`` (``ss``), for its CPU time."""
    out = subprocess.run(
        ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=False
    ).stdout
    m = re.search(r"pid=(\d+)", out)
    return int(m.group(1)) if m else None


def apt_install(*packages: str) -> None:
    """apt-get only what is missing (the dpkg lock is shared with whoever else uses it)."""
    print(f"installing {' '.join(packages)} with apt-get", file=sys.stderr, flush=True)
    subprocess.run(["apt-get", "update", "-q"], check=False)  # a fresh machine has no lists
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *packages], check=True)


def ensure_tools() -> None:
    wanted = (("wrk", "wrk"), ("bearerbox", "kannel"))
    missing = [pkg for tool, pkg in wanted if not shutil.which(tool)]
    if missing:
        apt_install(*missing)


# ---- simgate -----------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``run --worker-process``'s worker child): all their CPU."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_text(encoding="ascii")
                parents[int(entry)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    tree = [pid]
    for member in tree:  # grows while it is walked: breadth first
        tree += [p for p, parent in parents.items() if parent == member]
    return tree


async def run_simgate(
    args: argparse.Namespace, workdir: Path, role: Sequence[str] = ("run",), commit: str = "disk"
) -> Row:
    with SmscProcess("fast", workdir) as smsc:
        url = f"sqlite+aiosqlite:///{workdir / 'simgate.db'}"
        port = free_port()
        await prepare_gateway_user(workdir, url, port)
        data = simgate_settings(workdir, url, port)
        data["lines"] = {
            "smsc": {"driver": "smpp", "port": smsc.port, "system_id": "simgate",
                     "password": "pw", "window": 64},
        }  # fmt: skip
        data["routes"] = [{"prefix": "", "lines": ["smsc"]}]
        data["commit"] = commit
        config = write_config(workdir / "simgate.toml", data)
        proc = SimgateProcess(list(role), workdir=workdir, config=config, port=port)
        proc.start()
        try:
            proc.wait_healthy(60)
            body = (
                f'{{"username":"{GATEWAY_USER}","password":"{GATEWAY_PASSWORD}",'
                '"dest_num":"#N#","msg":"benchmark message","mode":0}'
            )
            target = Target(f"{proc.url}/sms/send", "POST", body, '"code":200')
            label = f"simgate ({' '.join(role)}, SQLite{', commit = os' if commit == 'os' else ''})"
            return await measure(label, target, smsc, lambda: _tree(proc.pid), args, workdir)
        finally:
            proc.stop()


# ---- Kannel ------------------------------------------------------------------------------


async def run_kannel(args: argparse.Namespace, workdir: Path) -> Row:
    with SmscProcess("fast", workdir) as smsc:
        ports = {"admin": free_port(), "smsbox": free_port(), "sendsms": free_port()}
        conf = workdir / "kannel.conf"
        conf.write_text(KANNEL_CONF.format(dir=workdir, smsc=smsc.port, **ports))
        with started(["bearerbox", str(conf)], cwd=workdir) as bearerbox:
            await _wait_listening(ports["smsbox"], 30, bearerbox)  # else smsbox gives up
            with started(["smsbox", str(conf)], cwd=workdir) as smsbox:
                await _wait_listening(ports["sendsms"], 30, smsbox)
                query = "username=bench&password=bench&from=Bench&to=#N#&text=benchmark+message"
                url = f"http://127.0.0.1:{ports['sendsms']}/cgi-bin/sendsms"
                target = Target(url, "GET", query, "Accepted")
                pids = [bearerbox.pid, smsbox.pid]
                return await measure("Kannel 1.4.5 (bearerbox + smsbox)", target, smsc,
                                     lambda: pids, args, workdir)  # fmt: skip


# ---- Jasmin ------------------------------------------------------------------------------


def ensure_jasmin() -> Path:
    """Jasmin's interpreter, installed with pip into its own venv on first use."""
    python = JASMIN_VENV / "bin" / "python"
    if not (JASMIN_VENV / "bin" / "jasmind.py").exists():
        print(f"installing jasmin=={JASMIN_VERSION} into {JASMIN_VENV}", file=sys.stderr)
        base = shutil.which("python3.11") or sys.executable
        subprocess.run([base, "-m", "venv", str(JASMIN_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"jasmin=={JASMIN_VERSION}"],
            check=True,
            env=jasmin_env(),
        )
    return python


def jasmin_env() -> dict[str, str]:
    """The environment of Jasmin's own interpreter: this one's without ``PYTHONPATH``, which
    names simgate's tree when the benches run from a checkout (``PYTHONPATH=src:.``); pip in
    Jasmin's venv then saw simgate there and warned of its requirements as missing."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@contextlib.contextmanager
def jasmin_brokers(workdir: Path) -> Iterator[list[int]]:
    """RabbitMQ and Redis on their usual local ports: the running ones, or ones we start
    (and stop after). Yields their pids, for the CPU column."""
    with contextlib.ExitStack() as stack:
        if not _listening(REDIS):
            if not shutil.which("redis-server"):
                apt_install("redis-server")
            stack.enter_context(
                started(["redis-server", "--bind", "127.0.0.1", "--port", str(REDIS),
                         "--save", ""], cwd=workdir)
            )  # fmt: skip
        if not _listening(RABBITMQ):
            if not shutil.which("rabbitmq-server"):
                apt_install("rabbitmq-server")
            env = {**os.environ, "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1"}
            stack.enter_context(started(["rabbitmq-server"], cwd=workdir, env=env))
        end = time.monotonic() + 60
        while not (_listening(REDIS) and _listening(RABBITMQ)):
            if time.monotonic() > end:
                raise RuntimeError("RabbitMQ (5672) or Redis (6379) did not come up")
            time.sleep(0.5)
        yield [p for p in (_listener_pid(RABBITMQ), _listener_pid(REDIS)) if p is not None]


JASMIN_CFG = """
[jcli]
bind = 127.0.0.1
port = {jcli}
authentication = False
[http-api]
bind = 127.0.0.1
port = {http}
[router]
bind = 127.0.0.1
port = {router}
authentication = False
[client-management]
bind = 127.0.0.1
port = {cm}
authentication = False
[smpp-server-pb]
bind = 127.0.0.1
port = {spb}
authentication = False
[smpp-server]
bind = 127.0.0.1
port = {smpps}
[redis-client]
dbid = 11
[amqp-broker]
spec = {spec}
"""


async def jcli(port: int, commands: list[str]) -> str:
    """Type ``commands`` into Jasmin's jCli (telnet; authentication off) and return what
    it answered. Each command waits for its prompt: ``jcli : `` or ``> `` (inside a form)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    said = b""

    async def prompt() -> bytes:
        buf = b""
        while not (buf.endswith(b"jcli : ") or buf.endswith(b"> ")):
            chunk = await asyncio.wait_for(reader.read(4096), 10)
            if not chunk:
                break
            buf += chunk
        return buf

    try:
        # The banner comes without a prompt (jCli shows its first one after a line is typed).
        with contextlib.suppress(TimeoutError):
            said += await asyncio.wait_for(reader.read(4096), 2)
        for command in commands:
            writer.write(command.encode() + b"\r\n")
            said += await prompt()
        writer.write(b"quit\r\n")
    finally:
        writer.close()
    return said.decode("latin-1")


async def run_jasmin(args: argparse.Namespace, workdir: Path) -> Row:
    python = ensure_jasmin()
    root = workdir / "jasmin"
    etc = root / "etc" / "jasmin"
    (etc / "resource").mkdir(parents=True)
    (etc / "store").mkdir()
    (root / "log").mkdir()
    site = next((JASMIN_VENV / "lib").glob("python3*/site-packages"))
    spec = etc / "resource" / "amqp0-9-1.xml"  # txamqp's spec, where Jasmin looks
    shutil.copy(site / "txamqp" / "specs" / "standard" / "amqp0-9-1.stripped.xml", spec)
    names = ("jcli", "http", "router", "cm", "spb", "smpps")
    ports = {name: free_port() for name in names}
    (etc / "jasmin.cfg").write_text(JASMIN_CFG.format(spec=spec, **ports))
    env = {
        **jasmin_env(), "ROOT_PATH": str(root), "CONFIG_PATH": str(etc),
        "LOG_PATH": str(root / "log"),
    }  # fmt: skip
    argv = [str(python), str(JASMIN_VENV / "bin" / "jasmind.py"), "-c", str(etc / "jasmin.cfg")]
    with (
        jasmin_brokers(workdir) as brokers,
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
                "user -a", "uid bench", "username bench", "password benchpw", "gid bench", "ok",
                "mtrouter -a", "type DefaultRoute", "connector smppc(bench_smsc)", "rate 0.00",
                "ok",
            ],
        )  # fmt: skip
        for needed in ("Successfully added connector", "Successfully started connector",
                       "Successfully added User", "Successfully added MTRoute"):  # fmt: skip
            if needed not in answer:
                raise RuntimeError(f"jCli did not confirm {needed!r}: {answer[-300:]!r}")
        query = "username=bench&password=benchpw&to=#N#&content=benchmark+message"
        target = Target(f"http://127.0.0.1:{ports['http']}/send", "GET", query, "Success")
        for _ in range(100):  # the connector binds in the background
            if "BOUND_TRX" in await jcli(ports["jcli"], ["smppccm --list"]):
                break
            await asyncio.sleep(0.1)
        return await measure("Jasmin 0.11.1 (+ RabbitMQ, Redis)", target, smsc,
                             lambda: [jasmind.pid, *brokers], args, workdir)  # fmt: skip


# ---- the table ---------------------------------------------------------------------------


async def run_simgate_split(args: argparse.Namespace, workdir: Path) -> Row:
    return await run_simgate(args, workdir, ("run", "--worker-process"))


async def run_simgate_os(args: argparse.Namespace, workdir: Path) -> Row:
    return await run_simgate(args, workdir, ("run",), "os")


async def run_simgate_split_os(args: argparse.Namespace, workdir: Path) -> Row:
    return await run_simgate(args, workdir, ("run", "--worker-process"), "os")


SYSTEMS = {
    "simgate": run_simgate,
    # Not in the default --only: options of `run` and of the settings.
    "simgate_split": run_simgate_split,
    "simgate_os": run_simgate_os,
    "simgate_split_os": run_simgate_split_os,
    "kannel": run_kannel,
    "jasmin": run_jasmin,
}
LABELS = {
    "simgate": "simgate",
    "simgate_split": "simgate run --worker-process",
    "simgate_os": "simgate (commit = os)",
    "simgate_split_os": "simgate run --worker-process (commit = os)",
    "kannel": "Kannel 1.4.5",
    "jasmin": "Jasmin 0.11.1",
}


async def scripts_bench(workdir: Path, seconds: float) -> Table:
    """``scripts/bench --only compare`` (simgate on SQLite: the backend a small box runs)."""
    return await compare(parser().parse_args(["--seconds", str(seconds)]), workdir)


async def compare(args: argparse.Namespace, workdir: Path) -> Table:
    ensure_tools()
    rows: list[Row] = []
    for name in args.only.split(","):
        sub = workdir / name
        sub.mkdir()
        try:
            rows.append(await SYSTEMS[name](args, sub))
        except Exception as exc:  # one system that cannot run still leaves a row saying why
            rows.append(Row(LABELS[name], note=f"not measured: {type(exc).__name__}: {exc}"))
    return Table(
        f"simgate vs Kannel vs Jasmin, one SMSC (bench/fast_smsc.py), single-message HTTP "
        f"sends, wrk -t1 -c{args.connections}, {args.seconds:g} s each",
        ["system", "HTTP req/s", "msg/s to SMSC", "p50 ms", "p99 ms", "CPU s/1000 msg",
         "messages", "note"],
        [r.cells() for r in rows],
        note="msg/s to SMSC: accepted messages over the time until the SMSC answered the last "
        "one. CPU: the system's processes (Jasmin's with RabbitMQ and Redis).",
    )  # fmt: skip


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument(
        "--only", default="simgate,kannel,jasmin", help="comma list: " + ",".join(SYSTEMS)
    )
    return p


async def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    unknown = [n for n in args.only.split(",") if n not in SYSTEMS]
    if unknown:
        parser().error(f"unknown system {unknown[0]!r}")
    with tempfile.TemporaryDirectory(prefix="simgate-compare-") as tmp:
        print((await compare(args, Path(tmp))).render())
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
