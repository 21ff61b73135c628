"""SMSC delivery receipts (SMPP v3.4 Appendix B) and message id matching.

Format (every SMSC bends it a little)::

    id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm
    stat:DDDDDDD err:E text:...

:func:`parse_receipt` is tolerant: keys are case-insensitive, ``submit_date`` /
``submitdate`` spellings are accepted, any field but ``id`` may be missing, dates
may have 10 (YYMMDDhhmm), 12 (+ss) or 14 (YYYYMMDDhhmmss) digits, unparseable
values become None. ``text:`` runs to the end of the string.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime

from simgate.codecs.smpp.constants import ESM_MESSAGE_TYPE_MASK, EsmClass, MessageState
from simgate.codecs.smpp.pdus import DataSm, DeliverSm

__all__ = [
    "DeliveryReceipt",
    "MessageState",
    "ReceiptParseError",
    "extract_receipt",
    "format_receipt",
    "id_candidates",
    "ids_match",
    "is_receipt",
    "normalize_message_id",
    "parse_receipt",
    "try_parse_receipt",
]


class ReceiptParseError(ValueError):
    """The text is not a delivery receipt (no ``id:`` field)."""


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    id: str
    sub: int | None = None
    dlvrd: int | None = None
    submit_date: datetime | None = None
    done_date: datetime | None = None
    stat: str | None = None
    err: str | None = None
    text: str | None = None

    @property
    def state(self) -> MessageState | None:
        """``stat`` as a MessageState (None if missing or unrecognised)."""
        return None if self.stat is None else MessageState.from_stat(self.stat)

    @property
    def error_code(self) -> int | None:
        """``err`` as an int: decimal, or hex when it has hex letters."""
        if not self.err:
            return None
        for base in (10, 16):
            try:
                return int(self.err, base)
            except ValueError:
                continue
        return None


_KEYS = r"id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text"
_KEY_RE = re.compile(rf"(?:^|(?<=\s))({_KEYS})\s*:", re.IGNORECASE)


def _canonical_key(raw: str) -> str:
    key = re.sub(r"[ _]", "", raw.lower())
    return {"submitdate": "submit_date", "donedate": "done_date"}.get(key, key)


def _parse_date(value: str) -> datetime | None:
    """YYMMDDhhmm[ss] (years 2000-2099) or YYYYMMDDhhmmss; None if invalid."""
    if not value.isascii() or not value.isdigit() or len(value) not in (10, 12, 14):
        return None
    if len(value) == 14:
        year, rest = int(value[:4]), value[4:]
    else:
        year, rest = 2000 + int(value[:2]), value[2:] + "00"[: 12 - len(value)]
    month, day, hour, minute, second = (int(rest[i : i + 2]) for i in range(0, 10, 2))
    try:
        return datetime(year, month, day, hour, minute, second)  # SMSC local time
    except ValueError:
        return None


def _parse_count(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def parse_receipt(text: str | bytes) -> DeliveryReceipt:
    """Parse receipt text (bytes are read as latin-1). Raises ReceiptParseError
    when there is no ``id:`` field."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    matches = list(_KEY_RE.finditer(text))
    values: dict[str, str] = {}
    for i, match in enumerate(matches):
        key = _canonical_key(match.group(1))
        if key == "text":
            values.setdefault(key, text[match.end() :].rstrip("\x00"))
            break
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        values.setdefault(key, text[match.end() : end].strip(" \t\r\n\x00"))
    message_id = values.get("id")
    if not message_id:
        raise ReceiptParseError(f"not a delivery receipt: {text[:60]!r}")

    def optional(key: str) -> str | None:
        return values.get(key) or None

    return DeliveryReceipt(
        id=message_id,
        sub=_parse_count(values.get("sub", "")),
        dlvrd=_parse_count(values.get("dlvrd", "")),
        submit_date=_parse_date(values.get("submit_date", "")),
        done_date=_parse_date(values.get("done_date", "")),
        stat=optional("stat"),
        err=optional("err"),
        text=values.get("text"),
    )


def try_parse_receipt(text: str | bytes) -> DeliveryReceipt | None:
    try:
        return parse_receipt(text)
    except ReceiptParseError:
        return None


def format_receipt(receipt: DeliveryReceipt, *, seconds: bool = False) -> str:
    """Appendix B text; missing fields are left out. Dates are YYMMDDhhmm, with
    ss appended when ``seconds``."""
    fmt = "%y%m%d%H%M%S" if seconds else "%y%m%d%H%M"
    parts = [f"id:{receipt.id}"]
    if receipt.sub is not None:
        parts.append(f"sub:{receipt.sub:03d}")
    if receipt.dlvrd is not None:
        parts.append(f"dlvrd:{receipt.dlvrd:03d}")
    if receipt.submit_date is not None:
        parts.append(f"submit date:{receipt.submit_date.strftime(fmt)}")
    if receipt.done_date is not None:
        parts.append(f"done date:{receipt.done_date.strftime(fmt)}")
    if receipt.stat is not None:
        parts.append(f"stat:{receipt.stat}")
    if receipt.err is not None:
        parts.append(f"err:{receipt.err}")
    if receipt.text is not None:
        parts.append(f"text:{receipt.text}")
    return " ".join(parts)


def is_receipt(pdu: DeliverSm | DataSm) -> bool:
    """esm_class message type is "SMSC delivery receipt" (xx0001xx)."""
    return pdu.esm_class & ESM_MESSAGE_TYPE_MASK == EsmClass.SMSC_DELIVERY_RECEIPT


def extract_receipt(pdu: DeliverSm | DataSm) -> DeliveryReceipt | None:
    """The receipt carried by a deliver_sm/data_sm, or None if it is not one.

    Text comes from short_message, else message_payload. The receipted_message_id
    TLV fills in a missing id, message_state a missing stat. A receipt flagged by
    esm_class whose text is unparseable still yields a receipt when the TLVs
    carry the id.
    """
    if not is_receipt(pdu):
        return None
    body = getattr(pdu, "short_message", b"") or pdu.tlvs.message_payload or b""
    parsed = try_parse_receipt(body)
    tlv_id = pdu.tlvs.receipted_message_id
    tlv_state = pdu.tlvs.message_state
    tlv_stat = tlv_state.stat if isinstance(tlv_state, MessageState) else None
    if parsed is None:
        return DeliveryReceipt(id=tlv_id, stat=tlv_stat) if tlv_id else None
    if parsed.stat is None and tlv_stat is not None:
        parsed = dataclasses.replace(parsed, stat=tlv_stat)
    return parsed


# --- message ids --------------------------------------------------------------------

_HEX = frozenset("0123456789abcdef")


def normalize_message_id(message_id: str) -> str:
    """Canonical text of a message id, for ids written in the same base.

    Rule: strip surrounding whitespace and NULs, lower-case; then, if what is left
    is all hex digits (which includes all-decimal ids), strip leading zeros ("000"
    becomes "0"). So ``"00A1b"`` and ``"a1B"`` normalise to ``"a1b"``, ``"0042"``
    to ``"42"``. Non-numeric ids (UUIDs...) are only trimmed and lower-cased.

    This cannot relate a decimal id to its hex spelling: ``"12"`` may be twelve or
    eighteen. Use :func:`id_candidates` / :func:`ids_match` for that.
    """
    text = message_id.strip(" \t\r\n\x00").lower()
    if text and set(text) <= _HEX:
        text = text.lstrip("0") or "0"
    return text


def id_candidates(message_id: str) -> set[str]:
    """Normalised ids that ``message_id`` may denote, across bases.

    Many SMSCs answer submit_sm with a hex id and put the same number in decimal
    (often zero-padded to 10 digits) in the receipt, or the reverse. The set holds
    ``normalize_message_id(message_id)`` plus, when the id is all decimal digits,
    its value rendered in hex, and when it is all hex digits, its value rendered in
    decimal. Store ``normalize_message_id(submit_sm_resp.message_id)`` and look a
    receipt up with ``id_candidates(receipt_id)``; prefer the exact
    (``normalize_message_id``) hit when several match. The relation is symmetric:
    ``normalize_message_id(a) in id_candidates(b)`` iff the converse holds.
    """
    canonical = normalize_message_id(message_id)
    candidates = {canonical}
    if canonical and set(canonical) <= _HEX:
        if canonical.isdigit():
            candidates.add(format(int(canonical, 10), "x"))
        candidates.add(str(int(canonical, 16)))
    return candidates


def ids_match(a: str, b: str) -> bool:
    """Whether two message ids can denote the same message (see id_candidates)."""
    return normalize_message_id(a) in id_candidates(b)
