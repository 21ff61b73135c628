"""Money as integer micro-units (1e-6 of a currency unit).

Stored amounts are integers so sums are exact on SQLite and PostgreSQL alike; text forms
are rendered with :func:`format_amount` (vendor APIs carry amounts as strings, spec §1.7).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

MICROS = 1_000_000
MAX_MICROS = 2**63  # stored in BIGINT columns
AMOUNT_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)


def parse_amount(text: str) -> int:
    """``"0.01"`` → 10_000 micros; raises ValueError on anything that is not a plain amount."""
    # Decimal() alone would also take "1e3", "1_000", "NaN" and "Infinity".
    if not AMOUNT_RE.fullmatch(text.strip()):
        raise ValueError(f"not an amount: {text!r}")
    try:
        micros = int((Decimal(text.strip()) * MICROS).quantize(Decimal(1), ROUND_HALF_EVEN))
    except InvalidOperation:  # more digits than the context's precision
        raise ValueError(f"amount out of range: {text!r}") from None
    if abs(micros) >= MAX_MICROS:
        raise ValueError(f"amount out of range: {text!r}")
    return micros


def to_decimal(micros: int) -> Decimal:
    return Decimal(micros) / MICROS


def format_amount(micros: int, places: int | None = None) -> str:
    """Plain decimal text without exponent or trailing zeros (or fixed ``places``)."""
    value = to_decimal(micros)
    if places is not None:
        return str(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN))
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"
