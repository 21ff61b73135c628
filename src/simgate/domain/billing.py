"""Rates by destination prefix and the charge of a message.

A rate is (kind, prefix, price per unit, currency); the longest matching prefix wins, the
empty prefix is the catch-all. SMS units are parts (spec §4: itniotech bills by chargeCnt);
voice rates are USD per minute, billed by the rate's billing period (spec §1.14).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from simgate.domain.calls import VoiceCharge
from simgate.domain.money import MICROS


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


# ---- voice (spec §1.14-§1.16) ---------------------------------------------------------------
# Formulas (also in README "Voice billing"):
#   chargedDuration = 0 when unanswered; else initial if callDuration <= initial, else
#                     initial + ceil((callDuration - initial) / increment) * increment
#   baseCost (USD)  = rate (USD per minute) * chargedDuration / 60
#   cost (USD)      = baseCost (simgate has no mark-up between them)
#   non-USD account: quoteExchange = units of the account's currency per 1 USD (the FX table,
#                    snapshot at accept), settleRate = rate * quoteExchange,
#                    settlePay = cost * quoteExchange; the balance is debited settlePay.
# Every amount is rounded once, to 6 decimals (micro-units), half up, from exact decimals.
BILL_PERIOD_RE = re.compile(r"([1-9][0-9]{0,3})\+([1-9][0-9]{0,3})", re.ASCII)
USD = "USD"


@dataclass(frozen=True, slots=True)
class BillPeriod:
    initial: int  # seconds billed for any answered call
    increment: int  # seconds per step after that

    @classmethod
    def parse(cls, text: str) -> BillPeriod:
        m = BILL_PERIOD_RE.fullmatch(text.strip())
        if m is None:
            raise ValueError(f"not a billing period (like 20+20 or 60+60): {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.initial}+{self.increment}"

    def charged_seconds(self, duration_s: int) -> int:
        if duration_s <= 0:
            return 0
        if duration_s <= self.initial:
            return self.initial
        steps = -(-(duration_s - self.initial) // self.increment)
        return self.initial + steps * self.increment


def _micros_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def per_minute_cost(rate_micros: int, seconds: int) -> int:
    """``rate * seconds / 60`` in micro-units, rounded half up."""
    return _micros_half_up(Decimal(rate_micros) * seconds / 60)


def convert(micros: int, quote_exchange_micros: int) -> int:
    """An amount in USD micro-units → the account's currency, rounded half up."""
    return _micros_half_up(Decimal(micros) * quote_exchange_micros / MICROS)


def voice_charge(
    *,
    answered: bool,
    duration_s: int,
    rate_micros: int,
    bill_period: str,
    currency: str,
    quote_exchange_micros: int | None,
) -> VoiceCharge:
    charged = BillPeriod.parse(bill_period).charged_seconds(duration_s) if answered else 0
    base = per_minute_cost(rate_micros, charged)
    if currency == USD or quote_exchange_micros is None:
        return VoiceCharge(charged, rate_micros, base, base, currency)
    return VoiceCharge(
        charged,
        rate_micros,
        base,
        base,
        currency,
        quote_exchange_micros=quote_exchange_micros,
        settle_rate_micros=convert(rate_micros, quote_exchange_micros),
        settle_pay_micros=convert(base, quote_exchange_micros),
    )


def first_step_cost(rate_micros: int, bill_period: str, quote_exchange_micros: int | None) -> int:
    """The least an answered call costs, in the account's currency (the balance check)."""
    base = per_minute_cost(rate_micros, BillPeriod.parse(bill_period).initial)
    return base if quote_exchange_micros is None else convert(base, quote_exchange_micros)
