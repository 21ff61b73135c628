"""``simgate run``'s worker in a child process, so HTTP and worker each get a core (issue 15).

One Python process runs on one core at a time (the GIL): in a single-process ``run`` the HTTP
API and the worker loops (dispatcher, lines, reaper, pushes, calls) take turns. Here ``run``
keeps the HTTP API (and the SMPP server) and starts ``simgate worker`` as its child on the same
settings. The two share only the database, as ``serve`` beside ``worker`` always did; what the
parent queues wakes the child through PostgreSQL NOTIFY, or on SQLite through a datagram
socket pair (dispatch/pipe_wakeup.py).

The child dies with its parent (``PR_SET_PDEATHSIG``, set by the child itself: no
``preexec_fn`` in a parent that already runs threads), and the parent starts a new one when it
dies (kill -9 loses nothing: the worker's journal and the reaper recover its lease, as after
any crash). On stop, the parent stops HTTP first, then the child (SIGTERM: it finishes the
batch in flight and records it), then closes its own runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from pathlib import Path

from simgate.cli.metrics_share import ChildMetrics

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # prctl(2)
STOP_TIMEOUT_S = 15.0  # the worker's graceful stop (batch in flight, lines) before SIGKILL
RESTART_FIRST_S = 0.5
RESTART_MAX_S = 30.0
STABLE_S = 60.0  # a child that ran this long resets the restart backoff
WAKE_FD_FLAG = "--wake-fd"  # hidden worker options, set by the parent only
PARENT_FLAG = "--parent-pid"
METRICS_FD_FLAG = "--metrics-fd"


def child_command(
    *, data_dir: Path | None, config: Path | None, parent_pid: int, wake_fd: int | None
) -> list[str]:
    cmd = [sys.executable, "-c", "from simgate.cli import main; main()", "worker"]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    if config is not None:
        cmd += ["--config", str(config)]
    cmd += [PARENT_FLAG, str(parent_pid)]
    if wake_fd is not None:
        cmd += [WAKE_FD_FLAG, str(wake_fd)]
    return cmd


def die_with_parent(parent_pid: int) -> None:
    """In the child, first thing: SIGTERM when the parent dies; exit if it is gone already."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # it died before prctl took effect: no signal will come
        sys.exit(0)


class WorkerChild:
    """Starts the worker child, restarts it when it dies, stops it on :meth:`stop`.

    Each child started gets a new metrics pair (cli/metrics_share.py): :attr:`metrics` is
    its samples for the parent's /metrics, with the counters of the children before it."""

    def __init__(self, command: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        self._command = command
        self._pass_fds = pass_fds
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.starts = 0
        self.metrics = ChildMetrics()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        await self._spawn()
        self._task = asyncio.create_task(self._supervise(), name="worker-child")

    async def _spawn(self) -> None:
        theirs = self.metrics.new_pair()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self._command,
                METRICS_FD_FLAG,
                str(theirs.fileno()),
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(*self._pass_fds, theirs.fileno()),
                # Our own session's signals only: a Ctrl-C reaches the parent, which stops
                # the child in order (HTTP first), instead of both stopping at once.
                start_new_session=True,
            )
        finally:
            theirs.close()  # the child has its copy
        self.starts += 1

    async def _supervise(self) -> None:
        delay = RESTART_FIRST_S
        loop = asyncio.get_running_loop()
        while True:
            proc = self._proc
            assert proc is not None
            began = loop.time()
            code = await proc.wait()
            if self._stopping:
                return
            if loop.time() - began >= STABLE_S:
                delay = RESTART_FIRST_S
            log.warning(
                "worker process %d ended (exit %s); restarting in %.1f s", proc.pid, code, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX_S)
            if self._stopping:
                return
            try:
                await self._spawn()
            except OSError:
                log.exception("cannot start the worker process")

    async def stop(self, grace_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM (a graceful stop), SIGKILL if it still runs after ``grace_s``."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.metrics.close()
