"""``simgate run|serve --workers N``: N processes answer HTTP on one address (issue 15).

One Python process answers HTTP on one core; ``--workers N`` starts N-1 more ``simgate serve``
processes beside this one, all on the same port: each binds its own socket with
``SO_REUSEPORT`` and the kernel spreads the connections over them. Only this first process runs
the worker loops (``run``); the others only accept, and what they queue reaches the worker at
once through PostgreSQL NOTIFY (dispatch/pg_wakeup.py). PostgreSQL only: on SQLite every write
of every process goes through one file lock, and one process already keeps it busy.

The extra processes are children of this one: they get SIGTERM when it stops, and (Linux) when
it dies, so none outlives its parent holding the port.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1  # prctl(2)
STOP_TIMEOUT_S = 10.0
CHILD_FLAG = "--http-child"  # hidden: set by the parent on its children's command line


def shared_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket that other processes may bind too (``SO_REUSEPORT``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def child_command(*, data_dir: Path | None, config: Path | None, host: str, port: int) -> list[str]:
    """The command line of one extra HTTP process: ``simgate serve`` on the same settings."""
    cmd = [sys.executable, "-c", "from simgate.cli import main; main()", "serve", CHILD_FLAG]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    if config is not None:
        cmd += ["--config", str(config)]
    return [*cmd, "--host", host, "--port", str(port)]


def _die_with_parent() -> None:  # pragma: no cover (runs in the child, before exec)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class HttpChildren:
    """The extra ``serve`` processes of ``--workers N``."""

    def __init__(self, command: list[str]) -> None:
        self._command = command
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, count: int) -> None:
        for _ in range(count):
            self.procs.append(
                subprocess.Popen(  # noqa: S603 (our own interpreter and CLI)
                    self._command,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 (no threads yet at start-up)
                )
            )

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM each (a graceful stop), SIGKILL what is still running after ``timeout``."""
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.procs.clear()
