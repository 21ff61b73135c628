"""The installed ``simgate`` script: real processes, one-line errors, SIMGATE_CONFIG."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Three real processes, each importing the whole package: not the edit-test loop's kind.
pytestmark = pytest.mark.slow

SIMGATE = Path(sys.executable).with_name("simgate")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SIMGATE_")}
    base.update({"SIMGATE_DEMO__CREATE": "false", "COLUMNS": "200"})
    base.update(env or {})
    return subprocess.run(
        [str(SIMGATE), *args], capture_output=True, text=True, env=base, timeout=60, check=False
    )


def test_config_file_from_environment_and_usage_errors(tmp_path: Path) -> None:
    config = tmp_path / "simgate.toml"
    config.write_text(f'data_dir = "{tmp_path / "d"}"\n')
    env = {"SIMGATE_CONFIG": str(config)}
    created = run("accounts", "create", "acme", env=env)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "account 1 acme created"
    assert (tmp_path / "d" / "simgate.db").exists()  # data_dir came from the file

    # Usage errors from typer are one line too (exit code 2, as click has it).
    for args, fragment in [
        (("sim", "inbound", "--port", "abc", "--from", "1", "--text", "x"), "'--port'"),
        (("acounts", "list"), "No such command"),
    ]:
        result = run(*args, env=env)
        assert result.returncode == 2, result
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("error: ")
        assert fragment in result.stderr
        assert "Traceback" not in result.stderr
