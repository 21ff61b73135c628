"""bench/http_send.py: "vs ceiling" is to the mean of the ceiling's two readings."""

from __future__ import annotations

import pytest
from bench.http_send import AGAIN, Cell, Load, drift, rows_of


def _cell(name: str, rps: float, requests: int = 1000) -> Cell:
    wide = Load(rps=rps, p50_ms=1.0, p99_ms=2.0, bad=1, requests=requests)
    one = Load(rps=rps / 2, p50_ms=0.5, p99_ms=1.5, bad=2)
    return Cell(name, wide, one, cpu_s=0.05)


def test_ratios_are_to_the_mean_of_both_ceiling_readings() -> None:
    rows = rows_of([_cell("ceiling", 12_000), _cell("send", 5_000), _cell(AGAIN, 8_000)])
    assert [row[0] for row in rows] == ["ceiling", "send", AGAIN]
    assert rows[1][4] == pytest.approx(0.5)  # 5,000 of (12,000 + 8,000) / 2
    assert rows[0][4] == pytest.approx(1.2)
    assert rows[2][4] == pytest.approx(0.8)
    assert rows[1][8] == pytest.approx(50.0)  # 0.05 s of CPU over 1,000 requests, in µs
    assert rows[1][9] == 3  # the bad answers at 32 connections and at 1
    assert drift(rows) == pytest.approx(1 / 3)


def test_a_steady_ceiling_does_not_drift_and_nothing_measured_is_no_ratio() -> None:
    rows = rows_of([_cell("ceiling", 10_000), _cell(AGAIN, 10_000)])
    assert drift(rows) == 0.0
    assert rows_of([_cell("ceiling", 0.0), _cell(AGAIN, 0.0)])[0][4] == 0.0
