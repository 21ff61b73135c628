"""``simgate run|serve --workers N``: N processes answer HTTP on one address (issue 15).

One Python process answers HTTP on one core; ``--workers N`` starts N-1 more ``simgate serve``
processes beside this one, all on the same port: each binds its own socket with
``SO_REUSEPORT`` and the kernel spreads the connections over them. Only this first process runs
the worker loops (``run``); the others only accept, and what they queue reaches the worker at
once through PostgreSQL NOTIFY (dispatch/pg_wakeup.py). PostgreSQL only: on SQLite every write
of every process goes through one file lock, and one process already keeps it busy.

The extra processes are children of this one (cli/worker_child.WorkerChild runs them):
they get SIGTERM when it stops, and (Linux) when it dies, so none outlives its parent
holding the port; one that dies is started again, with the worker child's backoff, and
logged. Each answers the first process's /metrics requests with its own samples
(cli/metrics_share.py), and asks the first process for /metrics when a scrape reaches it
(the kernel gives a connection to any of them): one /metrics, whichever process answers.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from simgate.api.app import metrics_text
from simgate.cli.child_channel import ChildChannel, ChildGone, Handler
from simgate.cli.metrics_share import ChildMetrics
from simgate.cli.worker_child import PARENT_FLAG, WorkerChild
from simgate.errors import Unavailable
from simgate.services.container import Services

STOP_TIMEOUT_S = 10.0
# How long a child's /metrics waits for the first process, which itself waits up to
# metrics_share.ANSWER_TIMEOUT_S for each other process.
ANSWER_TIMEOUT_S = 10.0
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


def child_command(
    *, data_dir: Path | None, config: Path | None, host: str, port: int, parent_pid: int
) -> list[str]:
    """The command line of one extra HTTP process: ``simgate serve`` on the same settings."""
    cmd = [sys.executable, "-c", "from simgate.cli import main; main()", "serve", CHILD_FLAG]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    if config is not None:
        cmd += ["--config", str(config)]
    # PDEATHSIG set by the child itself (cli/worker_child.die_with_parent): no preexec_fn in
    # a parent that already runs threads.
    return [*cmd, "--host", host, "--port", str(port), PARENT_FLAG, str(parent_pid)]


class HttpChildren:
    """The extra ``serve`` processes of ``--workers N``, each restarted when it dies."""

    def __init__(self, command: list[str], *, answers: Handler | None = None) -> None:
        """``answers``: how this process answers a child's request for /metrics."""
        self._command = command
        self._answers = answers
        self.children: list[WorkerChild] = []

    async def start(self, count: int) -> None:
        for _ in range(count):
            child = WorkerChild(
                self._command, control=False, answers=self._answers, what="HTTP process"
            )
            await child.start()
            self.children.append(child)

    @property
    def metrics(self) -> list[ChildMetrics]:
        """Each child's samples, for this process's /metrics."""
        return [c.metrics for c in self.children]

    @property
    def pids(self) -> list[int]:
        return [pid for c in self.children if (pid := c.pid) is not None]

    async def stop(self, grace_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM each (a graceful stop), SIGKILL what is still running after ``grace_s``."""
        await asyncio.gather(*(c.stop(grace_s) for c in self.children))
        self.children.clear()


async def answer_metrics(request: dict[str, Any], services: Services) -> dict[str, Any]:
    """A child's request for /metrics: the merged text, as this process's /metrics says it."""
    return {"text": (await metrics_text(services)).decode()}


def ask_for_metrics(channel: ChildChannel) -> Callable[[], Awaitable[bytes]]:
    """In a child: /metrics asks the first process (Unavailable if it cannot answer)."""

    async def ask() -> bytes:
        try:
            answer = await channel.ask({"op": "metrics"}, ANSWER_TIMEOUT_S)
        except (ChildGone, TimeoutError) as exc:
            raise Unavailable(f"the first process did not answer for /metrics: {exc!r}") from None
        return str(answer.get("text", "")).encode()

    return ask
