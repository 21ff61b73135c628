"""Real SMPP peers for the SMPP line: the npm ``smpp`` server (scripted) and helpers.

A peer is started by the test and stopped by its own process id; it binds 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def node_smpp_missing() -> str:
    """Why the npm smpp peer cannot run here ('' when it can)."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules" / "smpp").is_dir():
        return f"run npm install in {NODE_DIR}"
    return ""


class NodeSmsc:
    """``node server.js`` with a script (see server.js); ``entries()`` reads its log."""

    def __init__(self, workdir: Path, **script: Any) -> None:
        self.log_path = workdir / f"node-smsc-{time.monotonic_ns()}.jsonl"
        self.script = {"port": 0, "log": str(self.log_path), **script}
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._stderr = workdir / "node-smsc.err"

    def __enter__(self) -> NodeSmsc:
        env = {**os.environ, "SMPP_SCRIPT": json.dumps(self.script)}
        with open(self._stderr, "wb") as err:
            self.proc = subprocess.Popen(
                ["node", "server.js"],
                cwd=NODE_DIR,
                env=env,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()  # node prints it once listening
        if not line.startswith("LISTENING "):
            self.stop()
            raise RuntimeError(f"node smsc did not start: {self._stderr.read_text()[-500:]}")
        self.port = int(line.split()[1])
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def entries(self, ev: str | None = None) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        rows = [json.loads(x) for x in self.log_path.read_text().splitlines() if x.strip()]
        return [r for r in rows if ev is None or r["ev"] == ev]
