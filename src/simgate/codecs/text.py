"""The text of an incoming short message from its user data and data coding (pure).

The data coding is SMPP's ``data_coding`` (v3.4 §5.2.19), which shares its values with the
TP-DCS of TS 23.038 §4 for what phones send (0 default alphabet, 4 8-bit, 8 UCS-2), so a
modem line hands the TP-DCS it read and an SMPP line the data_coding it got.
"""

from __future__ import annotations

from collections.abc import Sequence

from simgate.codecs.gsm7 import decode_septets

__all__ = ["decode_text", "join_parts"]


def decode_text(data: bytes, data_coding: int) -> str:
    """Text of a short message by data_coding (§5.2.19); never raises.

    0 (and 1, IA5/ASCII) as GSM-7 septets, 8 as UCS-2 (UTF-16-BE), 3 as Latin-1; the
    8-bit binary codings (2, 4) and anything unknown are shown as Latin-1 rather than lost.
    """
    coding = data_coding & 0xFF
    if coding in (0, 1, 0xF0) and not any(b > 0x7F for b in data):
        return decode_septets(data)
    if coding == 8 or coding & 0xEC == 0x08:  # also DCS "general group, UCS2" forms
        return data[: len(data) // 2 * 2].decode("utf-16-be", errors="replace")
    return data.decode("latin-1")


def join_parts(parts: Sequence[tuple[int, bytes]]) -> str:
    """Text of a concatenated message from its parts in order, each ``(data_coding, data)``.

    Parts of one coding are joined before decoding: senders do cut a UTF-16 surrogate pair
    (an emoji) between two UCS-2 parts, which decodes only when the halves meet. Parts of
    mixed codings (a broken sender) are decoded one by one.
    """
    codings = {coding for coding, _ in parts}
    if len(codings) == 1:
        return decode_text(b"".join(data for _, data in parts), codings.pop())
    return "".join(decode_text(data, coding) for coding, data in parts)
