"""``simgate run | serve | worker | migrate``: the long-running roles."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.table import Table

from simgate.cli.child_channel import ChildAnswers, ChildChannel
from simgate.cli.common import Globals, console, esc, fail, run_async, settings_from
from simgate.cli.http_guard import guarded_protocol
from simgate.cli.http_workers import (
    CHILD_FLAG,
    HttpChildren,
    answer_metrics,
    ask_for_metrics,
    child_command,
    shared_socket,
)
from simgate.cli.metrics_listen import metrics_server
from simgate.cli.metrics_share import MetricsAnswerer
from simgate.cli.port_remote import (
    LOCKED_FLAG,
    PortAnswers,
    RemotePorts,
    lock_ports,
    parse_locked,
    request_timeout,
)
from simgate.cli.tls import ensure_certificate
from simgate.cli.worker_child import (
    ASK_FD_FLAG,
    CONTROL_FD_FLAG,
    METRICS_FD_FLAG,
    PARENT_FLAG,
    PID_FILE,
    WAKE_FD_FLAG,
    WorkerChild,
    cpus_here,
    die_with_parent,
    worker_mode,
)
from simgate.cli.worker_child import child_command as worker_command
from simgate.logsetup import configure
from simgate.runtime import Role, Runtime, migrate_database

# Net allocations between two collections of the young generation (see _serve).
GC_YOUNG_THRESHOLD = 20_000

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Where the database and keys live.")
]
Config = Annotated[Path | None, typer.Option("--config", help="TOML settings file.")]
Host = Annotated[str | None, typer.Option("--host", help="Address to listen on.")]
Port = Annotated[int | None, typer.Option("--port", help="TCP port to listen on.")]
Workers = Annotated[
    int,
    typer.Option(
        "--workers",
        min=1,
        help="HTTP processes on this port (PostgreSQL only); the first also runs the worker.",
    ),
]
# Set by --workers on the processes it starts (cli/http_workers.py): share the port, no
# metrics side server (the first process has it).
Child = Annotated[bool, typer.Option(CHILD_FLAG, hidden=True)]
WorkerProcess = Annotated[
    bool | None,
    typer.Option(
        "--worker-process/--one-process",
        help="The worker (dispatcher, lines, pushes) in a child process, so HTTP and worker "
        "each get a core, or both in this process (default: the child on SQLite when this "
        "process may use 2+ CPUs, and not with --workers N).",
        show_default=False,
    ),
]
# Set by `run` on its worker child (cli/worker_child.py).
ParentPid = Annotated[int | None, typer.Option(PARENT_FLAG, hidden=True)]
WakeFd = Annotated[int | None, typer.Option(WAKE_FD_FLAG, hidden=True)]
MetricsFd = Annotated[int | None, typer.Option(METRICS_FD_FLAG, hidden=True)]
ControlFd = Annotated[int | None, typer.Option(CONTROL_FD_FLAG, hidden=True)]
AskFd = Annotated[int | None, typer.Option(ASK_FD_FLAG, hidden=True)]
LockedPorts = Annotated[str | None, typer.Option(LOCKED_FLAG, hidden=True)]


def _print_demo(runtime: Runtime) -> None:
    data_dir = runtime.settings.data_dir
    if runtime.demo is None:
        console.print(f"demo credentials (if created earlier): {esc(data_dir / 'demo.json')}")
        return
    table = Table(title="simgate demo account (also in demo.json, mode 0600)")
    table.add_column("field")
    table.add_column("value")
    for key, value in runtime.demo.as_dict().items():
        table.add_row(key, esc(value))
    console.print(table)


async def _serve(
    role: Role,
    *,
    data_dir: Path | None,
    config: Path | None,
    host: str | None,
    port: int | None,
    workers: int = 1,
    child: bool = False,
    worker_process: bool | None = None,
    parent_pid: int | None = None,
    wake_fd: int | None = None,
    metrics_fd: int | None = None,
    control_fd: int | None = None,
    ask_fd: int | None = None,
    locked_ports: str | None = None,
) -> None:
    if parent_pid is not None:  # `run`'s worker child: never outlive it
        die_with_parent(parent_pid)
    settings = settings_from(data_dir=data_dir, config=config, host=host, port=port)
    configure(settings.log_level)
    if workers > 1 and settings.effective_database_url.startswith("sqlite"):
        fail(
            "--workers N needs PostgreSQL (database_url): on SQLite one process already "
            "keeps its single writer busy"
        )
    if role == "run":  # the worker in a child process, or in this one (and why: one line)
        worker_process, why = worker_mode(
            worker_process,
            cpus=cpus_here(),
            sqlite=settings.effective_database_url.startswith("sqlite"),
            workers=workers,
        )
        where = "in a child process" if worker_process else "in this process"
        console.print(f"simgate run: the worker {where} ({esc(why)})", soft_wrap=True)
    # A worker's SIGTERM is a graceful stop from its first moment: its dispatcher leases
    # while start_worker() still starts the rest, and SIGTERM's default action would end it
    # mid-batch (a `run --worker-process` killed right after starting its child: PDEATHSIG).
    stop = _stop_on_signals() if role == "worker" else None
    runtime = Runtime(settings, role=role)
    await runtime.open()
    worker_child: WorkerChild | None = None
    answerer: MetricsAnswerer | None = None
    requests: ChildAnswers | None = None
    ports: PortAnswers | None = None
    to_parent: ChildChannel | None = None
    try:
        if ask_fd is not None:  # an HTTP child of `--workers N`: /metrics is the parent's
            assert runtime.services is not None
            to_parent = ChildChannel()
            to_parent.adopt(ask_fd)
            runtime.services.metrics.answered_by = ask_for_metrics(to_parent)
        if metrics_fd is not None:  # a child of `run`: the parent's /metrics asks for ours
            assert runtime.services is not None
            answerer = MetricsAnswerer(metrics_fd, runtime.services.metrics)
            answerer.start()
        if control_fd is not None:  # ... and its port actions and USSD (cli/port_remote.py)
            assert runtime.services is not None
            ports = PortAnswers(runtime.services.lines)
            requests = ChildAnswers(control_fd, ports)
            requests.start()  # "starting: try again" until the lines are started below
        if role == "worker" or (role == "run" and not worker_process):
            if locked_ports:  # a restarted worker child: what the parent shows locked
                assert runtime.services is not None
                lines = runtime.services.lines
                await lock_ports(parse_locked(locked_ports, lines), lines)
            await runtime.start_worker()
            if ports is not None:
                ports.ready = True
            if wake_fd is not None:
                runtime.listen_to_parent(wake_fd)
        elif role == "run":  # the worker in a child (cli/worker_child.py), after migrations
            wake_fd_child = runtime.wake_child()
            worker_child = WorkerChild(
                worker_command(
                    data_dir=settings.data_dir,
                    config=config or Globals.config,
                    parent_pid=os.getpid(),
                    wake_fd=wake_fd_child,
                ),
                pass_fds=() if wake_fd_child is None else (wake_fd_child,),
                pid_file=settings.data_dir / PID_FILE,
            )
            assert runtime.services is not None  # one /metrics with the child's counters
            runtime.services.metrics.sources.append(worker_child.metrics)
            # Port actions and USSD go to the child's started lines (not our copies).
            remote = RemotePorts(
                worker_child.channel, runtime.services.lines, timeout_s=request_timeout(settings)
            )
            runtime.services.line_state.control_ports_with(remote)
            worker_child.extra_args = remote.child_args  # a restarted child keeps the locks
            await worker_child.start()
        # Start-up objects (settings, app, routes, compiled statements) live as long as the
        # process: out of the collector's sight, every collection has less to walk (a
        # micro-benchmark of the event bus spent 25% less). Once per process, here, never in
        # Runtime.open (tests open thousands of runtimes).
        gc.freeze()
        # The young generation is collected every GC_YOUNG_THRESHOLD net allocations, not
        # Python's 700: under 32 connections of one-number sends that was a collection every
        # 14 requests (1,231 young, 112 middle, 11 full in 17,138 sends, 4.6 % of the
        # process's time) that found nothing to free (a send leaves no reference cycles;
        # counted with gc.DEBUG_SAVEALL). 20,000: 12 % less CPU per send in the same run
        # (issue 15); 100,000 measured no better.
        gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
        if stop is not None:
            console.print("simgate worker running")
            await stop.wait()
            _default_signals()  # a second signal during the stop ends it at once, as before
            return
        if not child:  # one SMPP listener per machine: the HTTP children do not bind it
            smpp = await runtime.start_smpp_server()  # [smpp_server] enabled (issue 18)
            if smpp is not None:
                console.print(f"smpp server on {esc(settings.smpp_server.host)}:{smpp.port}")
            _print_demo(runtime)
        tls: dict[str, str] = {}
        if settings.http.tls:  # self-signed on first start (Dinstar clients use curl -k)
            cert, key = ensure_certificate(settings.data_dir, settings.http.host)
            tls = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
        cfg = uvicorn.Config(
            runtime.app(),
            host=settings.http.host,
            port=settings.http.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
            http=guarded_protocol(settings.http),  # header/body deadlines, connection cap
            # uvicorn would believe X-Forwarded-For from 127.0.0.1 by default, whatever our
            # settings say: only [http] trusted_proxies decides (api/http.py client_ip).
            proxy_headers=False,
            ssl_certfile=tls.get("ssl_certfile"),
            ssl_keyfile=tls.get("ssl_keyfile"),
        )
        server = _Server(cfg)
        sockets = None
        services = runtime.services
        assert services is not None
        children = HttpChildren(
            child_command(  # the settings this process loaded, global options included
                data_dir=settings.data_dir,
                config=config or Globals.config,
                host=settings.http.host,
                port=settings.http.port,
                parent_pid=os.getpid(),
            ),
            answers=lambda request: answer_metrics(request, services),
        )
        if workers > 1 or child:  # every process binds the port itself (SO_REUSEPORT)
            sockets = [shared_socket(settings.http.host, settings.http.port)]
            await children.start(workers - 1)
            services.metrics.sources.extend(children.metrics)  # one /metrics
        console.print(
            f"simgate {role} listening on {'https' if tls else 'http'}://"
            f"{esc(settings.http.host)}:{settings.http.port}"
            + (f" ({workers} processes)" if workers > 1 else "")
        )
        # /metrics on its own address, if configured (by the first process only)
        side = None if child else metrics_server(runtime)
        side_task = asyncio.create_task(side.serve()) if side is not None else None
        try:
            await server.serve(sockets=sockets)
        finally:
            await children.stop()
            if side is not None and side_task is not None:
                side.should_exit = True
                await side_task
    finally:
        # HTTP has stopped (above): nothing more is queued, so the worker child stops next,
        # recording its batch in flight, and this runtime closes last.
        if worker_child is not None:
            await worker_child.stop()
        if requests is not None:
            await requests.stop()
        if to_parent is not None:
            await to_parent.close()
        if answerer is not None:
            await answerer.stop()
        await runtime.close()


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising the signal once it has stopped.

    uvicorn re-raises a captured SIGTERM/SIGINT after ``serve()`` returns, which kills the
    process before ``runtime.close()`` runs: the dispatcher's batch in flight would stay
    SUBMITTING and later turn UNKNOWN. Here a signal only asks the server to exit (a second
    one forces it), and the caller then closes the runtime in order.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()

        def _exit() -> None:
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, _exit)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, from now on (the handlers stay for the process)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _default_signals() -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(sig)


def register(app: typer.Typer) -> None:
    @app.command()
    def run(
        *,
        data_dir: DataDir = None,
        host: Host = None,
        port: Port = None,
        config: Config = None,
        workers: Workers = 1,
        worker_process: WorkerProcess = None,  # None: cli/worker_child.py worker_mode decides
    ) -> None:
        """HTTP API and worker: the worker in a child on SQLite with 2+ CPUs, else one process."""
        run_async(
            lambda: _serve(
                "run",
                data_dir=data_dir,
                config=config,
                host=host,
                port=port,
                workers=workers,
                worker_process=worker_process,
            )
        )

    @app.command()
    def serve(
        *,
        data_dir: DataDir = None,
        host: Host = None,
        port: Port = None,
        config: Config = None,
        workers: Workers = 1,
        child: Child = False,
        parent_pid: ParentPid = None,
        metrics_fd: MetricsFd = None,
        ask_fd: AskFd = None,
    ) -> None:
        """The HTTP API only (run workers beside it on PostgreSQL)."""
        run_async(
            lambda: _serve(
                "serve",
                data_dir=data_dir,
                config=config,
                host=host,
                port=port,
                workers=workers,
                child=child,
                parent_pid=parent_pid,
                metrics_fd=metrics_fd,
                ask_fd=ask_fd,
            )
        )

    @app.command()
    def worker(
        *,
        data_dir: DataDir = None,
        config: Config = None,
        parent_pid: ParentPid = None,
        wake_fd: WakeFd = None,
        metrics_fd: MetricsFd = None,
        control_fd: ControlFd = None,
        locked_ports: LockedPorts = None,
    ) -> None:
        """Dispatcher, lines, reaper and pushes, without the HTTP API."""
        run_async(
            lambda: _serve(
                "worker",
                data_dir=data_dir,
                config=config,
                host=None,
                port=None,
                parent_pid=parent_pid,
                wake_fd=wake_fd,
                metrics_fd=metrics_fd,
                control_fd=control_fd,
                locked_ports=locked_ports,
            )
        )

    @app.command()
    def migrate(data_dir: DataDir = None, config: Config = None) -> None:
        """Create or upgrade the database schema."""

        async def main() -> None:
            revision = await migrate_database(settings_from(data_dir=data_dir, config=config))
            console.print(f"database at revision {revision}")

        run_async(main)
