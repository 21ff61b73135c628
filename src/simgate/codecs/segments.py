"""Choosing the alphabet of a text and splitting it into SMS parts.

Capacity of one short message is 140 octets of user data (TS 23.040 §9.2.3.16, TP-UDL).
A concatenated part also carries a User Data Header (TS 23.040 §9.2.3.24): 6 octets for
the 8-bit reference IE (UDHL + IEI 0x00 + IEDL + 3), 7 octets for the 16-bit one (IEI
0x08). Hence, per part:

============  ===========  ==================  ===================
encoding      single part  8-bit ref (default)  16-bit ref (wide)
============  ===========  ==================  ===================
GSM-7         160 septets  153 septets          152 septets
UCS-2         70 units     67 units             66 units
Latin-1       140 octets   134 octets           133 octets
============  ===========  ==================  ===================

(GSM-7: (140 - 6) * 8 = 1072 bits, minus 1 fill bit = 153 * 7; (140 - 7) * 8 = 1064 = 152 * 7.)

A part never ends between the two septets of an extension character (ESC + code, TS
23.038 §6.2.1.1) nor between the two units of a UTF-16 surrogate pair: a receiver that
decodes each part on its own (many do, or show parts before all arrived) would otherwise
display garbage. The character moves whole to the next part, leaving that part one unit
short. Grapheme clusters (ZWJ emoji sequences, combining marks, flags) are *not* kept
together; handsets reassemble before display so this only matters for per-part display.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from simgate.codecs.gsm7 import ESC, Gsm7Error, encode_to_str, is_gsm7, septet_count
from simgate.codecs.ucs2 import encode_ucs2, ucs2_units

__all__ = [
    "Encoding",
    "Gsm7Error",
    "Segmentation",
    "choose_encoding",
    "part_capacity",
    "part_count",
    "segment",
    "split",
]


class Encoding(enum.IntEnum):
    """Alphabet of a message; the values are SMPP v3.4 ``data_coding`` (§5.2.19).

    For GSM7 and UCS2 they are also the TS 23.038 §4 SMS Data Coding Scheme of the
    general data coding group without class (bits 3..2 = 00 GSM 7 bit default alphabet,
    10 UCS2). LATIN1 (ISO-8859-1) exists only in SMPP: there is no such DCS on the air
    interface, the SMSC transcodes it, and it is never chosen automatically.
    """

    GSM7 = 0
    LATIN1 = 3
    UCS2 = 8


# (single-part capacity, per-part capacity with 8-bit ref UDH, with 16-bit ref UDH), in
# the unit that encoding is counted in (septets, UTF-16 code units, octets).
_CAPACITY: dict[Encoding, tuple[int, int, int]] = {
    Encoding.GSM7: (160, 153, 152),
    Encoding.UCS2: (70, 67, 66),
    Encoding.LATIN1: (140, 134, 133),
}


def part_capacity(encoding: Encoding, *, multipart: bool, wide: bool = False) -> int:
    """Units available to text in one part (see the table in the module docstring)."""
    single, narrow_part, wide_part = _CAPACITY[Encoding(encoding)]
    if not multipart:
        return single
    return wide_part if wide else narrow_part


def _is_latin1(text: str) -> bool:
    return not text or max(text) <= "\xff"


def choose_encoding(text: str, *, prefer: Encoding | None = None) -> Encoding:
    """GSM7 if every character is GSM-7, else UCS2.

    ``prefer=UCS2`` forces UCS-2 (some routes mangle GSM-7); ``prefer=GSM7`` or
    ``prefer=LATIN1`` on a text that alphabet cannot carry raises ``ValueError``
    (``Gsm7Error`` for GSM-7) rather than degrading silently.
    """
    if prefer is None:
        return Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2
    prefer = Encoding(prefer)  # a bare int 0/3/8 must not skip the checks below
    if prefer is Encoding.GSM7 and not is_gsm7(text):
        septet_count(text)  # raises Gsm7Error naming the offending character
    if prefer is Encoding.LATIN1 and not _is_latin1(text):
        raise ValueError("text is not representable in ISO-8859-1")
    return prefer


def _ends(n: int, size: int, is_lead: Callable[[int], bool]) -> Iterator[int]:
    """Unit offsets where each part ends; ``is_lead(i)`` says unit i must not end a part."""
    pos = 0
    while pos < n:
        end = pos + size
        if end >= n:
            yield n
            return
        if is_lead(end - 1):
            end -= 1
        yield end
        pos = end


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def part_count(text: str, encoding: Encoding, *, wide: bool = False) -> int:
    """Number of parts ``split`` would produce, without building them.

    Cheap on the common paths: one C-level scan to count units; the part-by-part walk is
    only needed when an escape pair or surrogate pair could straddle a boundary, and
    then costs one step per part, not per character. An empty text is one (empty) part.
    """
    if type(encoding) is not Encoding:  # a bare int: Encoding(a member) cost ~1 us a send
        encoding = Encoding(encoding)
    single, narrow_part, wide_part = _CAPACITY[encoding]
    size = wide_part if wide else narrow_part
    if encoding is Encoding.GSM7:
        n = septet_count(text)
        if n <= single:
            return 1
        if n == len(text):  # no escape pairs
            return _ceil_div(n, size)
        septets = encode_to_str(text)
        esc = chr(ESC)
        return sum(1 for _ in _ends(n, size, lambda i: septets[i] == esc))
    if encoding is Encoding.UCS2:
        n = ucs2_units(text)
        if n <= single:
            return 1
        if n == len(text):  # no surrogate pairs
            return _ceil_div(n, size)
        data = encode_ucs2(text)
        return sum(1 for _ in _ends(n, size, lambda i: 0xD8 <= data[2 * i] <= 0xDB))
    if not _is_latin1(text):
        raise ValueError("text is not representable in ISO-8859-1")
    return 1 if len(text) <= single else _ceil_div(len(text), size)


def split(text: str, encoding: Encoding, *, wide: bool = False) -> list[str]:
    """Split ``text`` into the parts sent as separate short messages.

    One part if it fits a single message, else parts of at most 153 septets / 67 units /
    134 octets (152 / 66 / 133 with ``wide`` 16-bit references). ``"".join(parts) ==
    text`` always holds. Raises ``Gsm7Error``/``ValueError`` if the text does not fit the
    alphabet.
    """
    encoding = Encoding(encoding)
    single, narrow_part, wide_part = _CAPACITY[encoding]
    size = wide_part if wide else narrow_part
    if encoding is Encoding.GSM7:
        septets = encode_to_str(text)
        n = len(septets)
        if n <= single:
            return [text]
        esc = chr(ESC)
        parts: list[str] = []
        start = 0  # septet offset
        chars = 0  # text offset
        for end in _ends(n, size, lambda i: septets[i] == esc):
            # each ESC in the slice stands for an extension char that took 2 septets
            width = (end - start) - septets.count(esc, start, end)
            parts.append(text[chars : chars + width])
            chars += width
            start = end
        return parts
    if encoding is Encoding.UCS2:
        data = encode_ucs2(text)
        n = len(data) // 2
        if n <= single:
            return [text]
        out: list[str] = []
        start = 0
        for end in _ends(n, size, lambda i: 0xD8 <= data[2 * i] <= 0xDB):
            out.append(data[2 * start : 2 * end].decode("utf-16-be"))
            start = end
        return out
    if not _is_latin1(text):
        raise ValueError("text is not representable in ISO-8859-1")
    if len(text) <= single:
        return [text]
    return [text[i : i + size] for i in range(0, len(text), size)]


@dataclass(frozen=True, slots=True)
class Segmentation:
    """A text's chosen alphabet and its parts (``"".join(parts)`` is the text)."""

    encoding: Encoding
    parts: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.parts)


def segment(text: str, *, prefer: Encoding | None = None, wide: bool = False) -> Segmentation:
    """Choose the encoding (see :func:`choose_encoding`) and split the text for it."""
    encoding = choose_encoding(text, prefer=prefer)
    return Segmentation(encoding, tuple(split(text, encoding, wide=wide)))
