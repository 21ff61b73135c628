"""submit_sm PDUs for one message: addresses, data_coding, long-message parts (pure).

Addresses (SMPP v3.4 §5.2.5/§5.2.6): the source TON/NPI follow the sender's shape, because
SMSCs reject or rewrite a sender whose TON does not match it (ESME_RINVSRCTON):

* alphanumeric ("MyShop")           → TON 5 (alphanumeric), NPI 0
* short code (≤ 8 digits, config)  → TON 3/NPI 0 by default (some SMSCs want 0/1: config)
* anything longer, or with a "+"    → TON 1 (international), NPI 1 (E.164), "+" dropped

Long messages (§2.11, §5.3.2.22-24) use one of three forms (setting ``long_messages``):
``udh`` concatenation header in short_message with esm_class UDHI (0x40); ``sar`` the same
parts with SAR TLVs and no header; ``payload`` one submit_sm with the whole text in
message_payload (the SMSC splits it; it then answers one message id for the message).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simgate.codecs.gsm7 import encode_septets
from simgate.codecs.segments import Encoding, split
from simgate.codecs.smpp import EsmClass, Npi, SubmitSm, Tlvs, Ton
from simgate.codecs.ucs2 import encode_ucs2
from simgate.codecs.udh import encode_parts
from simgate.lines.base import SubmitRequest
from simgate.settings import SmppLineSettings

__all__ = ["Address", "PartPlan", "dest_address", "encode_text", "plan_parts", "source_address"]


@dataclass(frozen=True, slots=True)
class Address:
    ton: int
    npi: int
    addr: str


@dataclass(frozen=True, slots=True)
class PartPlan:
    """The submit_sm PDUs of one message (sequence numbers are set by the session)."""

    pdus: tuple[SubmitSm, ...]
    # How many message parts the PDUs stand for (payload mode: one PDU, many parts).
    parts: int


def source_address(sender: str, cfg: SmppLineSettings) -> Address:
    text = sender.strip()
    if not text:
        return Address(Ton.UNKNOWN, Npi.UNKNOWN, "")
    digits = text[1:] if text.startswith("+") else text
    if not digits.isdigit():
        return Address(Ton.ALPHANUMERIC, Npi.UNKNOWN, text[:11])  # TS 23.040: 11 chars max
    if not text.startswith("+") and len(digits) <= cfg.short_code_max_digits:
        return Address(cfg.short_code_ton, cfg.short_code_npi, digits)
    return Address(Ton.INTERNATIONAL, Npi.ISDN, digits)


def dest_address(recipient: str, cfg: SmppLineSettings) -> Address:
    digits = recipient.strip().lstrip("+")
    return Address(cfg.dest_ton, cfg.dest_npi, digits)


def encode_text(text: str, encoding: Encoding) -> bytes:
    """short_message octets of one part without header (data_coding 0 = unpacked septets)."""
    if encoding is Encoding.GSM7:
        return encode_septets(text)
    if encoding is Encoding.UCS2:
        return encode_ucs2(text)
    return text.encode("latin-1")


# Octets of short_message in one unconcatenated part (160 septets, 70 UCS-2 units, 140
# octets: TS 23.040 §9.2.3.16); septets are one octet each on SMPP (data_coding 0, unpacked).
_SINGLE = {Encoding.GSM7: 160, Encoding.UCS2: 140, Encoding.LATIN1: 140}


def plan_parts(req: SubmitRequest, cfg: SmppLineSettings, ref: int) -> PartPlan:
    """The PDUs for ``req``; ``ref`` (0..255) is the concatenation reference.

    Raises ValueError (Gsm7Error, Ucs2Error...) when the text does not fit its encoding.
    """
    encoding = Encoding(req.encoding)
    src = source_address(req.sender, cfg)
    dst = dest_address(req.recipient, cfg)
    base: dict[str, Any] = {
        "service_type": cfg.service_type,
        "source_addr_ton": src.ton,
        "source_addr_npi": src.npi,
        "source_addr": src.addr,
        "dest_addr_ton": dst.ton,
        "dest_addr_npi": dst.npi,
        "destination_addr": dst.addr,
        "registered_delivery": 1 if req.report_requested else 0,
        "data_coding": int(encoding),
    }
    whole = encode_text(req.text, encoding)
    if len(whole) <= _SINGLE[encoding]:  # the common case: one part, encoded once
        return PartPlan((SubmitSm(**base, short_message=whole),), 1)
    texts = split(req.text, encoding)
    total = len(texts)
    if cfg.long_messages == "payload":
        payload = Tlvs.build(message_payload=whole)
        return PartPlan((_with(base, tlvs=payload),), total)
    if cfg.long_messages == "sar":
        pdus = tuple(
            _with(
                base,
                short_message=encode_text(part, encoding),
                tlvs=Tlvs.build(
                    sar_msg_ref_num=ref, sar_total_segments=total, sar_segment_seqnum=seq
                ),
            )
            for seq, part in enumerate(texts, start=1)
        )
        return PartPlan(pdus, total)
    bodies = encode_parts(req.text, encoding, ref=ref)
    pdus = tuple(_with(base, short_message=b, esm_class=EsmClass.UDHI) for b in bodies)
    return PartPlan(pdus, total)


def _with(base: dict[str, Any], **fields: Any) -> SubmitSm:
    return SubmitSm(**base, **fields)
