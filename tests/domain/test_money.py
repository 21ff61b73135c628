"""Money: integer micros, parsed from and rendered as plain decimal text."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simgate.domain.money import MICROS, format_amount, parse_amount, to_decimal

amounts = st.integers(min_value=-(2**62), max_value=2**62)


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("0.01", 10_000),
        ("1", 1_000_000),
        ("100", 100_000_000),
        (" 2.5 ", 2_500_000),
        (".5", 500_000),
        ("5.", 5_000_000),
        ("-0.25", -250_000),
        ("+3", 3_000_000),
        ("0.000001", 1),
        ("0.0000005", 0),  # half-even below one micro
        ("0.0000015", 2),
    ],
)
def test_parse_examples(text: str, micros: int) -> None:
    assert parse_amount(text) == micros


@pytest.mark.parametrize(
    "text",
    ["", " ", "abc", "1,5", "1.2.3", "NaN", "nan", "inf", "-Infinity", "sNaN", "1e3", "1_000",
     "0x10", "--1", "1 2", "١٢", "9" * 40, "9223372036854.775808"],
)  # fmt: skip
def test_parse_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text)


@given(amounts)
def test_round_trip(micros: int) -> None:
    text = format_amount(micros)
    assert "e" not in text.lower()
    assert parse_amount(text) == micros
    assert Decimal(text) * MICROS == micros


@given(amounts, st.integers(min_value=0, max_value=6))
def test_fixed_places(micros: int, places: int) -> None:
    text = format_amount(micros, places)
    digits = text.split(".")[1] if "." in text else ""
    assert len(digits) == places
    assert abs(Decimal(text) - to_decimal(micros)) <= Decimal(1).scaleb(-places) / 2


@pytest.mark.parametrize(
    ("micros", "text"),
    [(0, "0"), (10_000, "0.01"), (1_000_000, "1"), (100_000_000, "100"), (-1, "-0.000001"),
     (1_500_000, "1.5")],
)  # fmt: skip
def test_format_examples(micros: int, text: str) -> None:
    assert format_amount(micros) == text


def test_format_fixed_examples() -> None:
    assert format_amount(10_000, 2) == "0.01"
    assert format_amount(15_000, 2) == "0.02"  # half-even
    assert format_amount(25_000, 2) == "0.02"
    assert format_amount(0, 3) == "0.000"
