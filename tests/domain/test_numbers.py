"""Phone numbers: normalise to international digits, check, and name the area (spec §7)."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simgate.domain.numbers import MAX_DIGITS, MIN_DIGITS, area, is_valid, normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+86 138-0013-8000", "8613800138000"),
        ("8613800138000", "8613800138000"),
        ("0044 7700 900123", "447700900123"),
        ("(415) 555.0123x", None),
        ("  +1 (202) 555-0123 ", "12025550123"),
        ("12", None),
        ("", None),
        ("+", None),
        ("abc1234567", None),
        ("1" * (MAX_DIGITS + 1), None),
        ("1" * MAX_DIGITS, "1" * MAX_DIGITS),
        ("1" * MIN_DIGITS, "1" * MIN_DIGITS),
        ("1" * (MIN_DIGITS - 1), None),
        ("٨٦١٣٨٠٠١٣٨٠٠٠", None),  # non-ASCII digits are not digits of a number here
        ("+86\n13800138000", None),
        ("+0012345678", None),  # no country code starts with 0
        ("013800138000", None),  # a national number, not international
        ("000000000", None),
    ],
)
def test_normalize(raw: str, expected: str | None) -> None:
    assert normalize(raw) == expected


@given(st.text(max_size=30))
def test_normalize_yields_ascii_digits_or_none(raw: str) -> None:
    out = normalize(raw)
    assert out is None or (out.isascii() and out.isdigit() and MIN_DIGITS <= len(out) <= 15)


@given(st.from_regex(r"\+?[1-9][0-9]{6,14}", fullmatch=True))
def test_normalize_is_idempotent(raw: str) -> None:
    once = normalize(raw)
    assert once is not None
    assert normalize(once) == once


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("8613800138000", True),
        ("12025550123", True),
        ("447700900123", True),
        ("4915112345678", True),
        ("999123456789", False),  # no country code 999
        ("1202555012", False),  # too short for NANP
        ("12025550123456", False),  # too long for NANP
        ("390612345678", True),  # Rome: the leading 0 belongs to Italian numbers
        ("79161234567", True),
        # A national prefix written after the country code: the digits as given would reach
        # the carrier, so they are refused (phonenumbers.parse would strip it and accept).
        ("4407700900123", False),
        ("789161234567", False),
    ],
)
def test_is_valid(number: str, valid: bool) -> None:
    assert is_valid(number) is valid


@given(st.from_regex(r"[1-9][0-9]{6,14}", fullmatch=True))
def test_is_valid_agrees_with_parse_when_parse_strips_nothing(number: str) -> None:
    """Where parse keeps every digit, building the number directly gives the same answer."""
    try:
        parsed = phonenumbers.parse("+" + number, None)
    except phonenumbers.NumberParseException:
        return
    zeros = (parsed.number_of_leading_zeros or 1) if parsed.italian_leading_zero else 0
    kept = f"{parsed.country_code}{'0' * zeros}{parsed.national_number}"
    if kept == number:
        assert is_valid(number) is phonenumbers.is_possible_number(parsed)


@given(st.from_regex(r"[1-9][0-9]{6,14}", fullmatch=True))
def test_is_valid_is_phonenumbers_on_the_digits_as_given(number: str) -> None:
    """The answer kept per (country code, length) is phonenumbers' answer for these very
    digits, leading zeros after the country code included."""
    for size in (1, 2, 3):
        code = int(number[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = number[size:]
            zeros = len(national) - max(len(national.lstrip("0")), 1)
            parsed = phonenumbers.PhoneNumber(
                country_code=code,
                national_number=int(national),
                italian_leading_zero=zeros > 0 or None,
                number_of_leading_zeros=zeros if zeros > 1 else None,
            )
            assert is_valid(number) is phonenumbers.is_possible_number(parsed)
            return
    assert is_valid(number) is False


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("8613800138000", "China(Beijing)"),
        ("12025550123", "United States(Washington D.C.)"),
        ("4915112345678", "Germany"),  # mobile: no region known → country alone
        ("99912345", ""),
    ],
)
def test_area(number: str, expected: str) -> None:
    assert area(number) == expected
