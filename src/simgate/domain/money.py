"""Money as integer micro-units (1e-6 of a currency unit).

Stored amounts are integers so sums are exact on SQLite and PostgreSQL alike; text forms
are rendered with :func:`format_amount` (vendor APIs carry amounts as strings, spec §1.7).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

MICROS = 1_000_000


def parse_amount(text: str) -> int:
    """``"0.01"`` → 10_000 micros; raises ValueError on anything that is not a plain amount."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not an amount: {text!r}")
    micros = (value * MICROS).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return int(micros)


def to_decimal(micros: int) -> Decimal:
    return Decimal(micros) / MICROS


def format_amount(micros: int, places: int | None = None) -> str:
    """Plain decimal text without exponent or trailing zeros (or fixed ``places``)."""
    value = to_decimal(micros)
    if places is not None:
        return str(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"
