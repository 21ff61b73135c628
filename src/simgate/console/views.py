"""How the console shows values: times with their zone, money, signal bars, form times.

Times are stored as UTC epoch milliseconds; a page shows them in the viewer's zone (the
console user's ``timezone``) and always names the zone, so a screenshot is unambiguous.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from simgate.domain.money import format_amount
from simgate.errors import InvalidInput

FORM_TIME = "%Y-%m-%dT%H:%M"  # <input type="datetime-local">


def when(ms: int | None, tz: str) -> str:
    """``2026-12-03 21:20:45 CET``; a dash for no time."""
    if ms is None:
        return "-"
    at = datetime.fromtimestamp(ms / 1000, tz=ZoneInfo(tz))
    return at.strftime("%Y-%m-%d %H:%M:%S %Z")


def parse_local(text: str, tz: str) -> int | None:
    """A ``datetime-local`` form value in the viewer's zone as UTC epoch ms; None if empty."""
    text = text.strip()
    if not text:
        return None
    try:
        at = datetime.strptime(text[:16], FORM_TIME).replace(tzinfo=ZoneInfo(tz))
    except ValueError:
        raise InvalidInput(f"not a time (YYYY-MM-DDTHH:MM): {text!r}") from None
    return int(at.timestamp() * 1000)


def money(micros: int | None, currency: str = "") -> str:
    if micros is None:
        return "-"
    amount = format_amount(micros)
    return f"{amount} {currency}".strip()


def bars(signal: int) -> int:
    """AT+CSQ 0..31 (99 = unknown) as 0..5 bars, as phones draw them (TS 27.007 §8.5)."""
    if signal <= 0 or signal >= 99:
        return 0
    return min(5, 1 + signal // 7)


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


FILTERS: dict[str, Callable[..., Any]] = {
    "money": money,
    "bars": bars,
    "percent": rate,
}
