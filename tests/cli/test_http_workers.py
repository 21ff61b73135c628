"""The pieces of ``--workers N`` (cli/http_workers.py); all of it: tests/process/test_workers.py."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import time
from pathlib import Path

import pytest

from simgate.cli.http_workers import CHILD_FLAG, HttpChildren, child_command, shared_socket
from simgate.testing.procs import free_port


def test_two_processes_worth_of_sockets_bind_one_port_and_both_accept() -> None:
    port = free_port()
    first, second = shared_socket("127.0.0.1", port), shared_socket("127.0.0.1", port)
    try:
        for _ in range(8):  # the kernel spreads connections; each socket is listening
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
        assert first.getsockname()[1] == second.getsockname()[1] == port
    finally:
        first.close()
        second.close()


def test_a_plain_listener_on_the_port_keeps_the_shared_ones_out() -> None:
    with socket.socket() as plain:
        plain.bind(("127.0.0.1", 0))
        plain.listen()
        port = plain.getsockname()[1]
        try:
            shared_socket("127.0.0.1", port)
        except OSError:
            return
        raise AssertionError("bound a port another program holds without SO_REUSEPORT")


def test_the_children_are_serve_processes_on_the_same_settings() -> None:
    cmd = child_command(
        data_dir=Path("/srv/simgate"),
        config=Path("/etc/simgate.toml"),
        host="0.0.0.0",
        port=8080,
        parent_pid=4242,
    )
    assert cmd[0] == sys.executable
    assert cmd[3:5] == ["serve", CHILD_FLAG]
    assert cmd[5:] == [
        "--data-dir", "/srv/simgate", "--config", "/etc/simgate.toml",
        "--host", "0.0.0.0", "--port", "8080", "--parent-pid", "4242",
    ]  # fmt: skip


async def test_stop_ends_every_child_even_one_that_ignores_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    stubborn = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"open({str(ready)!r} + sys.argv[1], 'w').close(); time.sleep(60)"
    )
    children = HttpChildren([sys.executable, "-c", stubborn, "x"])
    await children.start(2)
    slots = list(children.children)
    deadline = time.monotonic() + 30
    while not ready.with_name("readyx").exists() or len(children.pids) < 2:
        assert time.monotonic() < deadline, "children did not start"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # the second one too, most likely; SIGKILL ends either way
    await children.stop(grace_s=0.5)
    assert all(c.returncode in (-9, -15) for c in slots)
    assert -9 in [c.returncode for c in slots]  # one that ignored SIGTERM was killed
    assert children.pids == []


async def test_a_child_that_dies_is_started_again_with_a_backoff_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    starts = tmp_path / "starts"
    dies = f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(3)"
    children = HttpChildren([sys.executable, "-c", dies])
    caplog.set_level(logging.WARNING, logger="simgate.cli.worker_child")
    began = time.monotonic()
    await children.start(1)
    deadline = began + 30
    while not starts.exists() or len(starts.read_text()) < 3:
        assert time.monotonic() < deadline, "not started again"
        await asyncio.sleep(0.02)
    # Restarts 0.5 s, then 1 s after an end (worker_child.RESTART_FIRST_S, doubling).
    assert time.monotonic() - began >= 1.5
    await children.stop(grace_s=1)
    ended = [r.getMessage() for r in caplog.records if "ended (exit 3)" in r.getMessage()]
    assert len(ended) >= 2
    assert ended[0].startswith("HTTP process ")
    assert "restarting in 0.5 s" in ended[0]
    assert "restarting in 1.0 s" in ended[1]
