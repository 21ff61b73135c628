"""Rates by destination prefix and the charge of a message.

A rate is (kind, prefix, price per unit, currency); the longest matching prefix wins, the
empty prefix is the catch-all. SMS units are parts (spec §4: itniotech bills by chargeCnt).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rate:
    kind: str  # "sms" | "voice"
    prefix: str
    price_micros: int
    currency: str
    bill_period: str = ""  # voice only: "20+20", "60+60", ...


class RateTable:
    """Longest-prefix lookup; built once from the rate rows and kept in memory."""

    def __init__(self, rates: list[Rate]) -> None:
        self._by_kind: dict[str, dict[str, Rate]] = {}
        for r in rates:
            self._by_kind.setdefault(r.kind, {})[r.prefix] = r
        self._max_len = max((len(r.prefix) for r in rates), default=0)

    def lookup(self, kind: str, number: str) -> Rate | None:
        table = self._by_kind.get(kind)
        if not table:
            return None
        for n in range(min(len(number), self._max_len), -1, -1):
            rate = table.get(number[:n])
            if rate is not None:
                return rate
        return None


def sms_charge(rate: Rate, parts: int) -> int:
    return rate.price_micros * parts
