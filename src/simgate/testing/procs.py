"""Real ``simgate`` subprocesses for process-level tests and benchmarks.

A :class:`SimgateProcess` runs one role (``run``, ``serve``, ``worker``, ``migrate``...) in a
new session, with stdout and stderr going to files (a pipe nobody reads would block it), and
is stopped by its own process id only: tests must never touch processes they did not start.

    with SimgateProcess(["run"], config=cfg, workdir=tmp, port=free_port()) as proc:
        proc.wait_healthy()
        ...
        proc.kill()  # SIGKILL: a crash
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def simgate_command() -> list[str]:
    """The ``simgate`` console script of the running interpreter's environment."""
    script = Path(sys.executable).with_name("simgate")
    if script.exists():
        return [str(script)]
    found = shutil.which("simgate")
    if found:
        return [found]
    return [sys.executable, "-c", "from simgate.cli import main; main()"]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def toml_text(data: Mapping[str, Any], _prefix: str = "") -> str:
    """A small TOML writer for settings: scalars, lists, nested tables, arrays of tables."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    arrays: list[tuple[str, Sequence[Mapping[str, Any]]]] = []
    for key, value in data.items():
        name = f"{_prefix}.{key}" if _prefix else key
        if isinstance(value, Mapping):
            tables.append((name, value))
        elif isinstance(value, list | tuple) and value and isinstance(value[0], Mapping):
            arrays.append((name, value))
        elif value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for name, table in tables:
        out += f"\n[{name}]\n" + toml_text(table, name)
    for name, items in arrays:
        for item in items:
            out += f"\n[[{name}]]\n" + toml_text(item, name)
    return out


def write_config(path: Path, data: Mapping[str, Any]) -> Path:
    path.write_text(toml_text(data), encoding="utf-8")
    return path


class SimgateProcess:
    """One ``simgate`` subprocess; ``args`` are the words after ``simgate``."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        workdir: Path,
        config: Path | None = None,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        self.args = list(args)
        self.workdir = workdir
        self.config = config
        self.port = port
        self.name = name or (self.args[0] if self.args else "simgate")
        self._env = dict(env or {})
        self._popen: subprocess.Popen[bytes] | None = None
        self.stdout_path = workdir / f"{self.name}.{id(self):x}.out"
        self.stderr_path = workdir / f"{self.name}.{id(self):x}.err"

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> SimgateProcess:
        cmd = simgate_command()
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        cmd += self.args
        if self.port is not None:
            cmd += ["--port", str(self.port)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIMGATE_")}
        env.update(self._env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self._popen = subprocess.Popen(  # noqa: S603 (our own console script)
                cmd,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # a Ctrl-C in the test run does not reach it
            )
        return self

    @property
    def pid(self) -> int:
        assert self._popen is not None, "start() first"
        return self._popen.pid

    @property
    def url(self) -> str:
        assert self.port is not None, "no port"
        return f"http://127.0.0.1:{self.port}"

    def poll(self) -> int | None:
        assert self._popen is not None, "start() first"
        return self._popen.poll()

    def wait(self, timeout: float) -> int:
        assert self._popen is not None, "start() first"
        return self._popen.wait(timeout)

    def kill(self) -> int:
        """SIGKILL (a crash) and reap it; returns the exit status."""
        if self._popen is None:
            return 0
        if self._popen.poll() is None:
            self._popen.send_signal(signal.SIGKILL)
        return self._popen.wait(10)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (a graceful stop), then SIGKILL if it does not end in ``timeout``."""
        if self._popen is None:
            return 0
        if self._popen.poll() is None:
            self._popen.send_signal(signal.SIGTERM)
            try:
                return self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                return self.kill()
        return self._popen.wait(0)

    def __enter__(self) -> SimgateProcess:
        return self.start() if self._popen is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()

    # ---- observing -------------------------------------------------------------------
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def _check_alive(self, what: str) -> None:
        if self.poll() is not None:
            raise RuntimeError(
                f"simgate {self.name} exited ({self.poll()}) before {what}:\n"
                f"{self.stderr()[-2000:]}"
            )

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until ``GET /healthz`` answers 200 (raises if the process dies or time runs out)."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                self._check_alive("it was healthy")
                try:
                    if client.get(self.url + "/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"simgate {self.name} not healthy after {timeout} s")
                time.sleep(0.05)

    def wait_output(self, text: str, timeout: float = 30.0) -> None:
        """Until ``text`` appears on stdout (e.g. "simgate worker running")."""
        deadline = time.monotonic() + timeout
        while text not in self.stdout():
            self._check_alive(f"printing {text!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"simgate {self.name} did not print {text!r} in {timeout} s")
            time.sleep(0.05)
