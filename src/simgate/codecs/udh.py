"""User Data Header for concatenated short messages (3GPP TS 23.040 §9.2.3.24).

Only the two concatenation information elements are interpreted:

* IEI 0x00, §9.2.3.24.1: 8-bit reference. ``05 00 03 ref total seq``
* IEI 0x08, §9.2.3.24.8: 16-bit reference. ``06 08 04 ref_hi ref_lo total seq``

(the first byte is the UDHL, the length of the header without itself). Any other IE is
skipped over, as §9.2.3.24 asks of a receiver that does not understand it.
"""

from __future__ import annotations

from dataclasses import dataclass

from simgate.codecs.gsm7 import encode_septets, pack_septets
from simgate.codecs.segments import Encoding, split
from simgate.codecs.ucs2 import encode_ucs2

__all__ = [
    "IEI_CONCAT_8BIT",
    "IEI_CONCAT_16BIT",
    "MAX_PARTS",
    "UdhError",
    "UdhInfo",
    "build_concat_udh",
    "encode_parts",
    "fill_bits_for",
    "parse_udh",
]

IEI_CONCAT_8BIT = 0x00
IEI_CONCAT_16BIT = 0x08
#: TS 23.040 §9.2.3.24.1: total and sequence number are single octets.
MAX_PARTS = 255


class UdhError(ValueError):
    """The bytes do not hold a well-formed User Data Header."""


@dataclass(frozen=True, slots=True)
class UdhInfo:
    """Concatenation info: reference, total parts, this part's 1-based sequence number."""

    ref: int
    total: int
    seq: int
    wide: bool


def build_concat_udh(ref: int, total: int, seq: int, *, wide: bool) -> bytes:
    """Concatenation UDH including the leading UDHL byte.

    ``wide`` selects the 16-bit reference IE (§9.2.3.24.8) over the 8-bit one
    (§9.2.3.24.1). ``ref`` must fit the chosen width; ``1 <= seq <= total <= 255``
    (zero in either field makes the receiver ignore the IE, so we never emit it).
    """
    limit = 0xFFFF if wide else 0xFF
    if not 0 <= ref <= limit:
        raise ValueError(f"ref must be in 0..{limit}, got {ref}")
    if not 1 <= total <= MAX_PARTS:
        raise ValueError(f"total must be in 1..{MAX_PARTS}, got {total}")
    if not 1 <= seq <= total:
        raise ValueError(f"seq must be in 1..{total}, got {seq}")
    if wide:
        return bytes((6, IEI_CONCAT_16BIT, 4, ref >> 8, ref & 0xFF, total, seq))
    return bytes((5, IEI_CONCAT_8BIT, 3, ref, total, seq))


def parse_udh(data: bytes) -> tuple[UdhInfo | None, bytes]:
    """Parse the UDH at the start of ``data`` (user data with UDHI set).

    Returns the concatenation info (``None`` if there is no usable concatenation IE) and
    the user data after the header, untouched (for packed GSM-7 it still starts with
    :func:`fill_bits_for` fill bits). A header running past ``data``, or an IE running
    past the header, raises ``UdhError``; unknown IEs are skipped. A concatenation IE
    of the wrong length, or with total or seq of 0 or seq > total, is ignored as
    §9.2.3.24.1 prescribes. If it occurs more than once the last occurrence wins
    (§9.2.3.24: a duplicated non-repeatable IE).
    """
    if not data:
        raise UdhError("empty user data: no UDHL")
    udhl = data[0]
    end = 1 + udhl
    if end > len(data):
        raise UdhError(f"UDHL {udhl} exceeds the {len(data) - 1} octets that follow")
    info: UdhInfo | None = None
    pos = 1
    while pos < end:
        if pos + 2 > end:
            raise UdhError(f"truncated information element header at octet {pos}")
        iei, iedl = data[pos], data[pos + 1]
        value = data[pos + 2 : pos + 2 + iedl]
        if pos + 2 + iedl > end:
            raise UdhError(f"IE 0x{iei:02X} length {iedl} runs past the header")
        pos += 2 + iedl
        if iei == IEI_CONCAT_8BIT and iedl == 3:
            candidate = UdhInfo(value[0], value[1], value[2], wide=False)
        elif iei == IEI_CONCAT_16BIT and iedl == 4:
            candidate = UdhInfo((value[0] << 8) | value[1], value[2], value[3], wide=True)
        else:
            continue
        if 1 <= candidate.seq <= candidate.total:
            info = candidate
    return info, data[end:]


def fill_bits_for(udh_len_with_udhl: int) -> int:
    """Fill bits after a UDH of that many octets so GSM-7 text starts on a septet boundary.

    TS 23.040 §9.2.3.24 (and figure 9.2.3.24 (a)): e.g. 1 for the 6-octet 8-bit concat
    header (48 bits + 1 = 7 septets), 0 for the 7-octet 16-bit one (56 bits = 8 septets).
    """
    if udh_len_with_udhl < 0:
        raise ValueError("UDH length must be >= 0")
    return (7 - (udh_len_with_udhl * 8) % 7) % 7


def _payload(part: str, encoding: Encoding, *, packed: bool, fill_bits: int) -> bytes:
    if encoding is Encoding.GSM7:
        septets = encode_septets(part)
        return pack_septets(septets, fill_bits=fill_bits) if packed else septets
    if encoding is Encoding.UCS2:
        return encode_ucs2(part)
    return part.encode("latin-1")


def encode_parts(
    text: str, encoding: Encoding, *, ref: int, wide: bool = False, packed: bool = False
) -> list[bytes]:
    """User data of each part: concatenation UDH (multi-part only) + encoded text.

    GSM-7 is one unpacked septet per octet by default, which is what SMPP
    ``short_message`` carries for data_coding 0; ``packed=True`` gives the TS 23.038
    §6.1.2.1 packed form with the fill bits that follow the UDH, for PDU mode. For a
    packed part the TP-UDL is ``ceil(len(udh) * 8 / 7) + septets``. ``packed`` has no
    effect on UCS-2 / Latin-1. A text that fits one message gets no UDH (``ref`` is
    still validated). More than 255 parts raises ``ValueError``.
    """
    encoding = Encoding(encoding)
    limit = 0xFFFF if wide else 0xFF
    if not 0 <= ref <= limit:
        raise ValueError(f"ref must be in 0..{limit}, got {ref}")
    parts = split(text, encoding, wide=wide)
    if len(parts) == 1:
        return [_payload(parts[0], encoding, packed=packed, fill_bits=0)]
    total = len(parts)
    if total > MAX_PARTS:
        raise ValueError(f"text needs {total} parts, at most {MAX_PARTS} can be concatenated")
    out: list[bytes] = []
    for seq, part in enumerate(parts, start=1):
        udh = build_concat_udh(ref, total, seq, wide=wide)
        fill = fill_bits_for(len(udh))
        out.append(udh + _payload(part, encoding, packed=packed, fill_bits=fill))
    return out
