"""Shared by the ``run --worker-process`` process tests: finding and watching the worker child."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from simgate.testing.procs import write_config


def worker_children(pid: int) -> list[int]:
    """The ``simgate worker`` children of ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text(encoding="ascii")
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid and b"worker" in argv:
            out.append(int(entry))
    return out


async def one_worker_child(pid: int, *, not_in: frozenset[int] = frozenset()) -> int:
    deadline = time.monotonic() + 60
    while True:
        found = [c for c in worker_children(pid) if c not in not_in]
        if len(found) == 1:
            return found[0]
        assert len(found) < 2, found
        assert time.monotonic() < deadline, "no worker child"
        await asyncio.sleep(0.05)


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"  # a zombie has ended (not reaped yet)


async def gone(pid: int, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while running(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def child_config(tmp_path: Path, port: int, url: str | None = None, **worker: Any) -> Path:
    return write_config(
        tmp_path / "simgate.toml",
        {
            "database_url": url,
            "data_dir": str(tmp_path / "data"),
            "master_key": "worker-child-test-master-key-0123",
            "log_level": "warning",
            "demo": {"create": False},
            "http": {"port": port},
            "worker": worker,
            "lines": {"sim": {"driver": "sim", "journal": str(tmp_path / "sim.journal")}},
        },
    )
