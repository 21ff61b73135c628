"""bench/compare.py runs Jasmin under its own interpreter: simgate's PYTHONPATH stays out."""

from __future__ import annotations

import pytest
from bench.compare import jasmin_env


def test_jasmin_runs_without_simgates_pythonpath(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "src:.")
    monkeypatch.setenv("SIMGATE_BENCH_PROBE", "kept")
    env = jasmin_env()
    assert "PYTHONPATH" not in env
    assert env["SIMGATE_BENCH_PROBE"] == "kept"
