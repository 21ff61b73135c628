"""UCS-2 user data (3GPP TS 23.038 §5 DCS "UCS2 (16 bit)", SMPP data_coding 0x08).

The specs say UCS-2 (ISO/IEC 10646 BMP only), but every current handset and SMSC treats
the 16-bit alphabet as UTF-16 big-endian, so characters outside the BMP (emoji, some CJK)
travel as surrogate pairs. We therefore encode as UTF-16-BE and count UTF-16 code units:
an emoji costs 2 of the 70/67 units of a part.

Strictness: unpaired surrogates (possible in a Python ``str``, e.g. from a JSON
``"\\ud83d"`` escape) are rejected both ways instead of being sent as garbage.
"""

from __future__ import annotations

__all__ = ["Ucs2Error", "decode_ucs2", "encode_ucs2", "ucs2_units"]


class Ucs2Error(ValueError):
    """Text not encodable as UTF-16 (lone surrogate) or bytes that are not valid UTF-16-BE."""


def encode_ucs2(text: str) -> bytes:
    """Encode as UTF-16-BE without BOM; astral characters become surrogate pairs."""
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise Ucs2Error(
            f"cannot encode as UCS-2/UTF-16: {exc.reason} at index {exc.start}"
        ) from exc


def decode_ucs2(data: bytes) -> str:
    """Strictly decode UTF-16-BE: odd length or unpaired surrogates raise ``Ucs2Error``.

    A leading U+FEFF is kept as a character (ZWNBSP): the SMS 16-bit alphabet has no BOM.
    """
    try:
        return data.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise Ucs2Error(f"invalid UCS-2/UTF-16-BE data: {exc.reason} at byte {exc.start}") from exc


def ucs2_units(text: str) -> int:
    """Number of UTF-16 code units (characters above U+FFFF count 2)."""
    if text.isascii():
        return len(text)
    return len(encode_ucs2(text)) // 2
