"""How the console shows values (console/views.py)."""

from __future__ import annotations

import pytest

from simgate.console import views
from simgate.errors import InvalidInput

NOON_UTC = 1_780_000_000_000  # 2026-05-28 20:26:40 UTC


def test_times_name_their_zone() -> None:
    assert views.when(NOON_UTC, "UTC") == "2026-05-28 20:26:40 UTC"
    assert views.when(NOON_UTC, "Europe/Berlin") == "2026-05-28 22:26:40 CEST"
    assert views.when(None, "UTC") == "-"


def test_form_times_are_read_in_the_viewers_zone() -> None:
    assert views.parse_local("2026-05-28T22:26", "Europe/Berlin") == NOON_UTC - 40_000
    assert views.parse_local("2026-05-28T20:26", "UTC") == NOON_UTC - 40_000
    assert views.parse_local("  ", "UTC") is None
    with pytest.raises(InvalidInput, match="not a time"):
        views.parse_local("yesterday", "UTC")


@pytest.mark.parametrize(
    ("csq", "bars"), [(0, 0), (1, 1), (6, 1), (7, 2), (20, 3), (28, 5), (31, 5), (99, 0)]
)
def test_signal_bars(csq: int, bars: int) -> None:
    assert views.bars(csq) == bars


def test_money_and_rates() -> None:
    assert views.money(1_500_000, "USD") == "1.5 USD"
    assert views.money(None) == "-"
    assert views.rate(0.5) == "50.0 %"
    assert views.rate(None) == "-"
