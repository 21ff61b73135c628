"""Matching delivery receipts to the parts we submitted, across id bases.

The store keys a part by ``(line, line_ref)`` where ``line_ref`` is
``normalize_message_id(submit_sm_resp.message_id)``. Receipts usually quote that id, but
many SMSCs answer submit_sm with a hex id and put the same number in decimal in the
receipt (or the reverse). Reporting under *every* candidate form would be unsound: with hex
ids, "12" and "18" are two different messages, and a decimal receipt "18" (= 0x12) must not
touch the message whose id is hex "18".

So the matcher resolves a receipt id in this order:

1. the recent-id memory (ids of submit_sm_resp seen by this process, bounded LRU): the
   transform learned so far, then the exact form, then the other candidate forms of
   :func:`id_candidates`; a hit through a base change teaches the line's transform
   ("receipt_decimal": receipts carry the decimal value of a hex id; "receipt_hex": the
   reverse). The memory is per line, so a receipt arriving on any bind matches, and the line
   fills it on start from its refs journal (:mod:`.refs`), so it outlives a restart.
2. otherwise (the id was submitted by another worker, or is older than the memory) the configured
   or learned transform, else the exact normalised form. What the store cannot match yet is
   kept as a durable orphan and applied when the part is recorded, which also covers a
   receipt that overtakes its submit_sm_resp.

A long message sent as one message_payload (``long_messages = "payload"``) has one SMSC id
for all its segments: every part is stored under that one id (:func:`part_refs`), so its
one receipt settles them all from the store alone, also after a restart.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from simgate.codecs.smpp import id_candidates, normalize_message_id

__all__ = ["ReceiptMatcher", "Transform"]

Transform = Literal["same", "receipt_decimal", "receipt_hex"]
_HEX = frozenset("0123456789abcdef")


def _apply(transform: Transform, canonical: str) -> str | None:
    """The submit-side id for a receipt-side id under ``transform`` (None: not applicable)."""
    if transform == "same":
        return canonical
    if not canonical or not set(canonical) <= _HEX:
        return None
    if transform == "receipt_decimal":
        return format(int(canonical, 10), "x") if canonical.isdigit() else None
    return str(int(canonical, 16))


class ReceiptMatcher:
    def __init__(
        self,
        mode: Literal["auto", "same", "receipt_decimal", "receipt_hex"] = "auto",
        capacity: int = 200_000,
    ) -> None:
        self.mode = mode
        self.capacity = capacity
        self.learned: Transform | None = None if mode == "auto" else mode
        self._recent: OrderedDict[str, None] = OrderedDict()  # canonical ids, oldest first

    def __len__(self) -> int:
        return len(self._recent)

    def remember(self, canonical: str) -> None:
        self._recent[canonical] = None
        if len(self._recent) > self.capacity:
            self._recent.popitem(last=False)

    def known(self, receipt_id: str) -> str | None:
        """The remembered submit id ``receipt_id`` stands for, learning the transform."""
        canonical = normalize_message_id(receipt_id)
        if self.learned is not None:
            mapped = _apply(self.learned, canonical)
            if mapped is not None and mapped in self._recent:
                return mapped
            if self.mode != "auto":
                return None
        if canonical in self._recent:
            return canonical
        hits = [c for c in id_candidates(canonical) if c != canonical and c in self._recent]
        if len(hits) != 1:
            return None
        hit = hits[0]
        if self.learned is None:
            self.learned = (
                "receipt_decimal"
                if canonical.isdigit() and hit == format(int(canonical), "x")
                else "receipt_hex"
            )
        return hit

    def fallback(self, receipt_id: str) -> str:
        """Best guess for an id not in memory: the transform if known, else exact."""
        canonical = normalize_message_id(receipt_id)
        if self.learned is not None:
            mapped = _apply(self.learned, canonical)
            if mapped is not None:
                return mapped
        return canonical


def part_refs(submit_id: str, parts: int) -> tuple[str, ...]:
    """Refs of the parts of a message the SMSC split itself (message_payload): every part
    carries the one id, so the store counts every part and the one receipt reports them
    all (the store matches a ref to every part of one message that carries it)."""
    return (submit_id,) * parts
