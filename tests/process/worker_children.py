"""Shared by the process tests of ``simgate run``'s children: the worker child of
``run --worker-process`` (cli/worker_child.py) and the extra HTTP processes of
``run --workers N`` (cli/http_workers.py): finding, watching and killing them."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from simgate.testing.procs import SimgateProcess
from tests.process.support import sim_line, simgate_config

# `run`'s default on SQLite with 2+ CPUs (cli/worker_child.py worker_mode), named: the same on
# any machine and backend.
RUN = ["run", "--worker-process"]


def _stat(pid: int) -> list[str]:
    """``/proc/PID/stat`` from its third field (state) on: the command name before it may
    hold spaces and parentheses. OSError once the process is reaped."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    return stat[stat.rindex(")") + 2 :].split()


def _children(pid: int, word: bytes) -> list[int]:
    """The children of ``pid`` with ``word`` among their command-line words."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(_stat(int(entry))[1])
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if ppid == pid and word in argv:
            out.append(int(entry))
    return out


def worker_children(pid: int) -> list[int]:
    """The ``simgate worker`` children of ``pid``."""
    return _children(pid, b"worker")


def http_children(pid: int) -> list[int]:
    """The extra HTTP processes of ``pid`` (not its worker child)."""
    return _children(pid, b"--http-child")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` so far (``/proc/PID/stat`` utime, stime)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_worker_child(pid: int, *, not_in: frozenset[int] = frozenset()) -> int:
    deadline = time.monotonic() + 60
    while True:
        found = [c for c in worker_children(pid) if c not in not_in]
        if len(found) == 1:
            return found[0]
        assert len(found) < 2, found
        assert time.monotonic() < deadline, "no worker child"
        await asyncio.sleep(0.05)


async def started(proc: SimgateProcess, *, lines_running: bool = False) -> int:
    """Until ``proc`` (a ``run --worker-process``, started) answers /healthz and has its
    worker child, and with ``lines_running`` until the child said "simgate worker running"
    (its lines are started); the child's pid."""
    await asyncio.to_thread(proc.wait_healthy, 60.0)
    if lines_running:
        await asyncio.to_thread(proc.wait_output, "simgate worker running", 60.0)
    return await one_worker_child(proc.pid)


def running(pid: int) -> bool:
    try:
        state = _stat(pid)[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended (not reaped yet)


async def gone(pid: int, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while running(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def kill_child(pid: int) -> None:
    """SIGKILL our test's own grandchild ``pid`` (by its pid) and wait until it has ended."""
    os.kill(pid, signal.SIGKILL)
    assert await gone(pid), f"{pid} lived on after SIGKILL"


async def both_listening(proc: SimgateProcess) -> None:
    """Until the HTTP child of a ``run --workers 2`` printed its own "listening" line too
    (stdout is shared)."""
    deadline = time.monotonic() + 60
    while proc.stdout().count("listening on") < 2:
        assert time.monotonic() < deadline, proc.stdout()
        await asyncio.sleep(0.1)


async def send_over(
    base: str, user: str, password: str, numbers: range, connections: int = 16
) -> list[str]:
    """One OpenVox /sms/send per number in ``numbers`` from ``connections`` clients at once
    (each its own connection: the kernel gives each to either process of a ``run --workers``,
    SO_REUSEPORT); the answers' bodies."""
    answers: list[str] = []

    async def client(c: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for i in numbers[c::connections]:
                body = {"username": user, "password": password, "dest_num": f"86138{i:08d}"}
                answers.append((await http.post("/sms/send", json={**body, "msg": f"m{i}"})).text)

    await asyncio.gather(*(client(c) for c in range(connections)))
    return answers


def child_config(tmp_path: Path, port: int, url: str | None = None, **worker: Any) -> Path:
    """The config of a ``run --worker-process`` with one sim line and ``worker`` settings."""
    return simgate_config(tmp_path, port, url, worker=worker, lines=sim_line(tmp_path))
