"""Phone numbers: international form without ``+`` (as the vendors' samples, spec §1.3)."""

from __future__ import annotations

import functools

import phonenumbers

MIN_DIGITS = 7
MAX_DIGITS = 15  # ITU-T E.164 §6.1


def normalize(raw: str) -> str | None:
    """``"+86 138-0013-8000"`` → ``"8613800138000"``; None when it cannot be a number."""
    text = raw.strip()
    if text.startswith("+"):
        text = text[1:]
    elif text.startswith("00"):
        text = text[2:]
    digits = "".join(ch for ch in text if ch not in " -().")
    if not digits.isascii() or not digits.isdigit():
        return None
    if digits.startswith("0"):  # no country code starts with 0 (ITU-T E.164 §6.2.1)
        return None
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        return None
    return digits


@functools.lru_cache(maxsize=65536)
def is_valid(number: str) -> bool:
    """A normalised number that phonenumbers considers possible for its country code.

    "Possible" (length fits the plan) rather than "valid" (the range is allocated): number
    plans change faster than any library, and a gateway refusing a real new range is worse
    than the carrier rejecting a fake one.
    """
    try:
        parsed = phonenumbers.parse("+" + number, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_possible_number(parsed))


def area(number: str, lang: str = "en") -> str:
    """``Country(Region)`` for voice records (spec §7), ``Country`` when no region is known."""
    # Imported here: the geocoder's data takes over a second to load, and only voice
    # records need it (every CLI command and process start would pay for it otherwise).
    from phonenumbers import geocoder  # noqa: PLC0415
    try:
        parsed = phonenumbers.parse("+" + number, None)
    except phonenumbers.NumberParseException:
        return ""
    country = geocoder.country_name_for_number(parsed, lang)
    region = geocoder.description_for_number(parsed, lang)
    if region and region != country:
        return f"{country}({region})"
    return country
