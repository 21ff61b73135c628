"""``simgate run``'s worker in a child process, so HTTP and worker each get a core (issue 15).

The default of ``run`` on SQLite wherever this process may use more than one CPU
(:func:`worker_mode`; ``--one-process`` keeps both in one process, ``--worker-process`` asks
for the child).

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
from collections.abc import Callable
from pathlib import Path

from simgate.cli.child_channel import ChildAnswers, ChildChannel, Handler, channel_pair
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
CONTROL_FD_FLAG = "--control-fd"  # the parent's requests: port actions, USSD
ASK_FD_FLAG = "--ask-fd"  # the child's requests to the parent (--workers N: /metrics)


def cpus_here() -> int:
    """The CPUs this process may run on: its affinity mask (``taskset``, a container's cpuset
    or CPU quota set as a mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def worker_mode(
    asked: bool | None, *, cpus: int, sqlite: bool = True, workers: int = 1
) -> tuple[bool, str]:
    """Whether ``run`` starts its worker in a child process, and why (for the start-up line).

    ``asked``: ``--worker-process`` (True), ``--one-process`` (False) or neither (None). By
    default the child on SQLite wherever there are two CPUs to share: measured on 2 cores
    (issue 15, one-number sends at 32 / 1 connections, same run), OpenVox 0.51 of
    ``/healthz`` against 0.46 in one process, bench.compare 3,081 against 2,418 req/s with less
    CPU per message; re-measured by turns on 2026-12-05, OpenVox 1.04-1.81x the req/s in 3 runs
    of 4. On PostgreSQL the same runs disagreed (0.63-2.6x; the quietest: OpenVox 0.89x / 0.63x,
    itniotech 0.79x / 0.80x, 8-14 % more CPU per send): one process stays its default. On one
    CPU the two processes would only take turns on it. ``--workers N`` keeps the worker in its
    first HTTP process: a child beside N HTTP processes was not measured."""
    if asked is not None:
        return asked, "--worker-process" if asked else "--one-process"
    if cpus < 2:
        return False, "1 CPU: a worker process would only take turns with HTTP on it"
    if not sqlite:
        return False, "PostgreSQL: a worker process measured no faster there"
    if workers > 1:
        return False, f"--workers {workers}: the first HTTP process runs it"
    return True, f"{cpus} CPUs: HTTP and the worker each get one"


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


PID_FILE = "worker-child.pid"  # in data_dir: the running worker child, for the next run
POLL_S = 0.05


def _argv(pid: int) -> list[bytes] | None:
    """The command line of a running process (None: gone, a zombie, or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if stat[stat.rindex(")") + 2 :].startswith("Z"):  # ended, not reaped yet
        return None
    return argv


def predecessor(pid_file: Path) -> int | None:
    """The worker child an earlier ``run`` on this data_dir left running, or None.

    Only an orphan: a child whose parent still runs belongs to a live ``run`` (not ours to
    stop), and a pid reused by another program lacks the worker's command line."""
    try:
        pid = int(pid_file.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    argv = _argv(pid)
    flag = PARENT_FLAG.encode()
    if pid == os.getpid() or argv is None or b"worker" not in argv or flag not in argv:
        return None
    try:
        parent = int(argv[argv.index(flag) + 1])
    except (IndexError, ValueError):
        return None
    if parent != os.getpid() and _argv(parent) is not None:
        return None
    return pid


async def _gone(pid: int, seconds: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while _argv(pid) is not None:
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(POLL_S)
    return True


async def stop_predecessor(pid_file: Path, grace_s: float = STOP_TIMEOUT_S) -> int | None:
    """Wait for the worker child of a ``run`` that was killed (SIGKILL: it could not stop
    its child) to end its graceful stop, SIGKILL it after ``grace_s``; returns its pid.

    The kernel sent it SIGTERM when its parent died (PDEATHSIG): it is finishing its batch in
    flight and closing its lines. A new child beside it would run two workers on one
    data_dir for up to ``grace_s``: an SMPP line bound twice, a modem port opened twice."""
    pid = predecessor(pid_file)
    if pid is None:
        return None
    log.warning("the worker process %d of an earlier run is still stopping: waiting for it", pid)
    if not await _gone(pid, grace_s):
        log.warning("the worker process %d did not stop in %.0f s: killing it", pid, grace_s)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        await _gone(pid, 5.0)
    return pid


def _write_pid(pid_file: Path, pid: int) -> None:
    tmp = pid_file.with_name(pid_file.name + ".tmp")
    tmp.write_text(f"{pid}\n", encoding="ascii")
    tmp.replace(pid_file)  # whole or not at all: a reader never sees half a number


class WorkerChild:
    """Starts the worker child, restarts it when it dies, stops it on :meth:`stop`.

    Each child started gets a new metrics pair (cli/metrics_share.py): :attr:`metrics` is
    its samples for the parent's /metrics, with the counters of the children before it; and
    a new request pair (cli/child_channel.py): :attr:`channel`, for port actions and USSD."""

    def __init__(
        self,
        command: list[str],
        pass_fds: tuple[int, ...] = (),
        *,
        pid_file: Path | None = None,
        control: bool = True,
        answers: Handler | None = None,
        what: str = "worker process",
        extra_args: Callable[[], list[str]] | None = None,
    ) -> None:
        """``control``: a request pair for port actions (the worker); ``answers``: a pair on
        which this process answers the child's requests with it (the HTTP children of
        ``--workers N`` ask for the merged /metrics); ``what`` the child is, for the logs;
        ``extra_args`` more options, asked for at each start (the ports locked now)."""
        self._command = command
        self._pass_fds = pass_fds
        self._pid_file = pid_file
        self._control = control
        self._answers = answers
        self._answering: ChildAnswers | None = None
        self._what = what
        self.extra_args = extra_args
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._not_spawning = asyncio.Event()
        self._not_spawning.set()
        self.starts = 0
        self.metrics = ChildMetrics()
        self.channel = ChildChannel()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """How the latest child ended (None: running, or none started)."""
        return self._proc.returncode if self._proc is not None else None

    async def start(self) -> None:
        """Start it (in the background: HTTP need not wait for an earlier run's child)."""
        self._task = asyncio.create_task(self._run(), name="worker-child")

    async def _spawn(self) -> asyncio.subprocess.Process:
        theirs = self.metrics.new_pair()
        given = [(METRICS_FD_FLAG, theirs)]
        if self._control:
            given.append((CONTROL_FD_FLAG, self.channel.new_pair()))
        if self._answers is not None:
            await self._stop_answering()  # the previous child's requests: it is gone
            ours, asking = channel_pair()
            self._answering = ChildAnswers(ours.detach(), self._answers)
            self._answering.start()
            given.append((ASK_FD_FLAG, asking))
        self._not_spawning.clear()
        try:
            proc = self._proc = await asyncio.create_subprocess_exec(
                *self._command,
                *(arg for flag, sock in given for arg in (flag, str(sock.fileno()))),
                *(self.extra_args() if self.extra_args is not None else ()),
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(*self._pass_fds, *(sock.fileno() for _, sock in given)),
                # Our own session's signals only: a Ctrl-C reaches the parent, which stops
                # the child in order (HTTP first), instead of both stopping at once.
                start_new_session=True,
            )
        finally:
            self._not_spawning.set()
            for _, sock in given:
                sock.close()  # the child has its copies
        self.starts += 1
        if self._pid_file is not None:
            try:
                _write_pid(self._pid_file, proc.pid)
            except OSError:
                log.exception("cannot write %s", self._pid_file)
        return proc

    async def _run(self) -> None:
        """The first start after an earlier run's child ended, then a restart after each end
        (with a backoff while they come quickly)."""
        if self._pid_file is not None:  # one worker per data_dir: an earlier one ends first
            await stop_predecessor(self._pid_file)
        delay = RESTART_FIRST_S
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                proc = await self._spawn()
            except OSError:
                log.exception("cannot start the %s; trying again in %.1f s", self._what, delay)
            else:
                began = loop.time()
                code = await proc.wait()
                if self._stopping:
                    return
                if loop.time() - began >= STABLE_S:
                    delay = RESTART_FIRST_S
                log.warning(
                    "%s %d ended (exit %s); restarting in %.1f s", self._what, proc.pid, code, delay
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX_S)

    async def stop(self, grace_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM (a graceful stop), SIGKILL if it still runs after ``grace_s``."""
        self._stopping = True
        await self._not_spawning.wait()  # a child being started: stopped below, not left
        if self._task is not None and self._proc is None:  # still waiting to start the first
            self._task.cancel()
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
        await self.channel.close()
        await self._stop_answering()
        if self._pid_file is not None:
            with contextlib.suppress(OSError):
                self._pid_file.unlink()

    async def _stop_answering(self) -> None:
        answering, self._answering = self._answering, None
        if answering is not None:
            await answering.stop()
