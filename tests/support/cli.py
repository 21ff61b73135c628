"""Running the operator CLI in-process (typer's CliRunner) and reading what it prints."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from simgate.cli import app, common

Cli = Callable[..., Result]


def invoker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """A CLI on a fresh data directory under ``tmp_path``, with wide tables and no demo."""
    for name in list(os.environ):
        if name.startswith("SIMGATE_") and not name.startswith("SIMGATE_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SIMGATE_DEMO__CREATE", "false")
    monkeypatch.setattr(common.console, "width", 250)  # wide tables: ids stay on one line
    monkeypatch.setattr(common.err_console, "width", 250)
    runner = CliRunner()
    data = tmp_path / "data"

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, ["--data-dir", str(data), *args], env=env)

    return invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def error(result: Result, fragment: str, code: int = 1) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def row(out: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is ``first``."""
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in\n{out}")
