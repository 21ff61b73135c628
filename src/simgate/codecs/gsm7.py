"""GSM 7-bit default alphabet (3GPP TS 23.038, formerly GSM 03.38).

Two layers are kept apart on purpose:

* *septets*: ``encode_septets``/``decode_septets`` map text to one septet value per byte
  (unpacked). This is what SMPP carries in ``short_message`` for data_coding 0 and what
  the segment arithmetic counts.
* *packing*: ``pack_septets``/``unpack_septets`` squeeze septets into octets as the air
  interface / PDU mode does (TS 23.038 §6.1.2.1).

Only the default alphabet (§6.2.1) and its default extension table (§6.2.1.1) are
supported; national language shift tables (§6.2.1.2) are not. No lossy mapping is done:
a character is GSM-7 only if it is in one of the two tables, so e.g. "ç" (U+00E7) or "á"
go to UCS-2 rather than being silently turned into "Ç" or "a".
"""

from __future__ import annotations

__all__ = [
    "ESC",
    "EXTENSION_CHARS",
    "GSM7_CHARS",
    "Gsm7Error",
    "decode_septets",
    "encode_septets",
    "is_gsm7",
    "pack_septets",
    "septet_count",
    "unpack_septets",
]

# TS 23.038 §6.2.1: the 128 code points of the default alphabet, in code order. 0x1B is
# not a character but the escape to the extension table, so it maps to no text at all
# (U+001B in a text is therefore *not* encodable; a literal ESC would be misread by the
# handset as the start of an extension pair).
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00-0x0F (0x09 is capital Ç, as in the spec table)
    "Δ_ΦΓΛΩΠΨΣΘΞ\x00ÆæßÉ"  # 0x10-0x1F (0x1B = ESC, placeholder here, never mapped)
    " !\"#¤%&'()*+,-./"  # 0x20-0x2F (0x24 is the currency sign ¤, not $)
    "0123456789:;<=>?"  # 0x30-0x3F
    "¡ABCDEFGHIJKLMNO"  # 0x40-0x4F (0x40 is ¡, "@" lives at 0x00)
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50-0x5F
    "¿abcdefghijklmno"  # 0x60-0x6F
    "pqrstuvwxyzäöñüà"  # 0x70-0x7F
)

#: Escape to the default extension table (TS 23.038 §6.2.1, code 0x1B).
ESC = 0x1B

# TS 23.038 §6.2.1.1 default extension table: ESC followed by these codes. 0x0A is the
# page break / form feed control (U+000C).
_EXTENSION: dict[str, int] = {
    "\x0c": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

_BASIC_ENCODE: dict[str, int] = {ch: code for code, ch in enumerate(_BASIC) if code != ESC}
_EXTENSION_DECODE: dict[int, str] = {code: ch for ch, code in _EXTENSION.items()}

#: Every character the default alphabet + extension table can represent.
GSM7_CHARS: frozenset[str] = frozenset(_BASIC_ENCODE) | frozenset(_EXTENSION)
#: Characters that cost two septets (ESC + code).
EXTENSION_CHARS: frozenset[str] = frozenset(_EXTENSION)

# str.translate tables: translation runs in C, which keeps the hot path (counting parts
# for billing) free of per-character Python loops.
_ENCODE_TABLE: dict[int, str] = {ord(ch): chr(code) for ch, code in _BASIC_ENCODE.items()}
_ENCODE_TABLE.update({ord(ch): chr(ESC) + chr(code) for ch, code in _EXTENSION.items()})
_DECODE_TABLE: dict[int, str] = {code: ch for ch, code in _BASIC_ENCODE.items()}


class Gsm7Error(ValueError):
    """Text not representable in GSM-7, or septet data that is not valid GSM-7."""


def is_gsm7(text: str) -> bool:
    """True if every character is in the default alphabet or its extension table."""
    return GSM7_CHARS.issuperset(text)


def _check(text: str) -> None:
    if not GSM7_CHARS.issuperset(text):
        bad = next(ch for ch in text if ch not in GSM7_CHARS)
        raise Gsm7Error(
            f"character {bad!r} (U+{ord(bad):04X}) at index {text.index(bad)} "
            "is not in the GSM 7-bit default alphabet or its extension table"
        )


def septet_count(text: str) -> int:
    """Number of septets ``text`` needs; extension characters count 2 (ESC + code)."""
    _check(text)
    # Most texts have no extension character: one C-level scan says so (counting each of
    # the ten with str.count was ~5 us of every one-number send, issue 15).
    if EXTENSION_CHARS.isdisjoint(text):
        return len(text)
    return len(text) + sum(text.count(ch) for ch in EXTENSION_CHARS)


def encode_to_str(text: str) -> str:
    """Septets as a str of code points 0..127.

    Same content as :func:`encode_septets` but left as ``str`` so ``segments`` can find
    ESC positions and count with C-level ``str`` methods.
    """
    _check(text)
    return text.translate(_ENCODE_TABLE)


def encode_septets(text: str) -> bytes:
    """Encode to unpacked septets: one value 0..127 per byte, extension chars as ESC pairs."""
    return encode_to_str(text).encode("latin-1")


def decode_septets(data: bytes, *, strict: bool = False) -> str:
    """Decode unpacked septets (one per byte) to text.

    Values above 0x7F are never septets and always raise. For escape sequences that the
    default extension table does not define, the receiving-entity rules of TS 23.038
    §6.2.1.1 apply unless ``strict`` is set: ESC + undefined code displays the character
    of the main table for that code, and ESC ESC (reserved for a further extension
    table) displays a space. A lone ESC at the very end is likewise shown as a space.
    With ``strict=True`` all three raise ``Gsm7Error``.
    """
    if data and max(data) > 0x7F:
        pos = next(i for i, b in enumerate(data) if b > 0x7F)
        raise Gsm7Error(f"byte 0x{data[pos]:02X} at index {pos} is not a septet (> 0x7F)")
    if ESC not in data:
        return data.decode("latin-1").translate(_DECODE_TABLE)
    out: list[str] = []
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b != ESC:
            out.append(_BASIC[b])
            i += 1
            continue
        if i + 1 == n:
            if strict:
                raise Gsm7Error("dangling ESC at end of septets")
            out.append(" ")
            break
        code = data[i + 1]
        i += 2
        ext = _EXTENSION_DECODE.get(code)
        if ext is not None:
            out.append(ext)
        elif strict:
            raise Gsm7Error(f"undefined extension sequence ESC 0x{code:02X} at index {i - 2}")
        elif code == ESC:
            out.append(" ")
        else:
            out.append(_BASIC[code])
    return "".join(out)


def _check_fill(fill_bits: int) -> None:
    # TS 23.040 §9.2.3.24: 0..6 fill bits align the first septet after the UDH.
    if not 0 <= fill_bits <= 6:
        raise ValueError(f"fill_bits must be in 0..6, got {fill_bits}")


def pack_septets(septets: bytes, *, fill_bits: int = 0) -> bytes:
    """Pack septets into octets (TS 23.038 §6.1.2.1.1).

    Septet *n* occupies bits ``fill_bits + 7n`` onwards, least significant bit first, so the
    first septet fills the low bits of the first octet. ``fill_bits`` zero bits precede the
    first septet; they realign the text on a septet boundary after a User Data Header
    (TS 23.040 §9.2.3.24). Output length is ``ceil((fill_bits + 7 * len(septets)) / 8)``;
    unused high bits of the last octet are zero (no CR padding, §6.1.2.3.1: the TP-UDL
    septet count tells the receiver where the text ends).
    """
    _check_fill(fill_bits)
    if septets and max(septets) > 0x7F:
        raise Gsm7Error("septet values must be 0..127")
    out = bytearray()
    acc = 0
    bits = fill_bits
    for s in septets:
        acc |= s << bits
        bits += 7
        if bits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            bits -= 8
    if bits:
        out.append(acc)
    return bytes(out)


def unpack_septets(data: bytes, count: int, *, fill_bits: int = 0) -> bytes:
    """Inverse of :func:`pack_septets`: read ``count`` septets after ``fill_bits`` bits.

    ``count`` comes from the TP-UDL (minus the UDH septets) because the octet length alone
    is ambiguous: 7 trailing zero bits could be an "@" (TS 23.038 §6.1.2.3.1).
    """
    _check_fill(fill_bits)
    if count < 0:
        raise ValueError("count must be >= 0")
    needed = (fill_bits + 7 * count + 7) // 8
    if len(data) < needed:
        raise Gsm7Error(f"{count} septets need {needed} octets, got {len(data)}")
    out = bytearray()
    acc = 0
    bits = 0
    it = iter(data)
    skip = fill_bits
    while len(out) < count:
        while bits < 7 + skip:
            acc |= next(it) << bits
            bits += 8
        if skip:
            acc >>= skip
            bits -= skip
            skip = 0
        out.append(acc & 0x7F)
        acc >>= 7
        bits -= 7
    return bytes(out)
