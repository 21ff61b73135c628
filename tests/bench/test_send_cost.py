"""bench/send_cost.py: its requests do what the rows say (no timing is asserted)."""

from __future__ import annotations

from pathlib import Path

from bench import send_cost


async def test_rows_are_sends_and_refusals_that_succeeded(tmp_path: Path) -> None:
    # A handful of requests per row: what is checked is that every request did what its row
    # names (the app answered code 200 to a send and 400 to the ceiling's mode 2; the service
    # accepted one number per call), so the CPU figures are of those requests.
    out = await send_cost.measure("sqlite", tmp_path, each=8)
    names = [row[0] for row in out.rows]
    assert names[:2] == ["app, refused before the DB", "app, 1 number"]
    assert [row[1] for row in out.rows if str(row[0]).startswith("service")] == [
        *send_cost.SERVICE_TASKS,
        *send_cost.SERVICE_TASKS,
    ]
    assert all(row[-1] == 0 for row in out.rows), out.render()
    assert out.rows[0][4] == 1.0  # the baseline row against itself
    assert all(row[3] > 0 for row in out.rows)
    assert "per commit" in out.note
