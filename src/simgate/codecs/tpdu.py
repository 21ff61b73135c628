"""SMS transfer-layer PDUs in PDU mode (3GPP TS 23.040 §9.2, TS 27.005 §3.1 <pdu>).

What a modem line needs: SMS-SUBMIT to encode (and decode, for the fake modem and round
trips), SMS-DELIVER and SMS-STATUS-REPORT to decode. In PDU mode every PDU a modem takes or
gives is prefixed with the SMSC address (TS 27.005 §3.1: ``00`` = the one stored in the SIM);
``+CMGS=<length>`` counts the TPDU octets without that prefix.

User data goes through codecs.gsm7 (packed septets after the fill bits), ucs2 and udh.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from simgate.codecs.gsm7 import (
    decode_septets,
    encode_septets,
    pack_septets,
    unpack_septets,
)
from simgate.codecs.segments import Encoding, split
from simgate.codecs.text import decode_text
from simgate.codecs.ucs2 import encode_ucs2
from simgate.codecs.udh import UdhError, UdhInfo, build_concat_udh, fill_bits_for, parse_udh

__all__ = [
    "DCS_GSM7",
    "DCS_UCS2",
    "Deliver",
    "StatusReport",
    "Submit",
    "TpduError",
    "decode_address",
    "decode_deliver",
    "decode_scts",
    "decode_status_report",
    "decode_submit",
    "encode_address",
    "encode_deliver",
    "encode_scts",
    "encode_status_report",
    "encode_submit",
    "submit_parts",
    "submit_text",
    "vp_relative",
]

DCS_GSM7 = 0x00  # TS 23.038 §4: general group, default alphabet, no class
DCS_8BIT = 0x04
DCS_UCS2 = 0x08
# TS 23.040 §9.1.2.5 type of address: bit 7 set, TON in bits 6-4, NPI in bits 3-0.
TOA_INTERNATIONAL = 0x91  # TON 001 international, NPI 0001 ISDN/E.164
TOA_UNKNOWN = 0x81  # TON 000 unknown, NPI 0001
TOA_ALPHANUMERIC = 0xD0  # TON 101 alphanumeric (GSM-7 packed), NPI 0000
# TS 23.040 §9.2.3.1 TP-MTI, first octet bits 1-0.
MTI_DELIVER = 0x00
MTI_SUBMIT = 0x01
MTI_STATUS_REPORT = 0x02
_SEMI = "0123456789*#abc"  # TS 23.040 §9.1.2.3 semi-octet digits (BCD with * # a b c)


class TpduError(ValueError):
    """Bytes that are no well-formed TPDU of the kind asked for."""


# ---- addresses (TS 23.040 §9.1.2.5) ------------------------------------------------------


def encode_address(number: str, *, smsc: bool = False) -> bytes:
    """A TP address (length in digits) or, with ``smsc``, an RP SMSC address (length in
    octets, TS 24.011 §8.2.5.1). ``+`` marks international; a sender name with letters is
    alphanumeric (TON 101, GSM-7 packed)."""
    if number and not number.lstrip("+").isdigit():
        if smsc:
            raise TpduError(f"an SMSC address is digits, got {number!r}")
        septets = encode_septets(number)
        if len(septets) > 11:
            raise TpduError(f"alphanumeric address {number!r} is over 11 characters")
        packed = pack_septets(septets)
        return bytes((len(packed) * 2, TOA_ALPHANUMERIC)) + packed
    toa = TOA_INTERNATIONAL if number.startswith("+") else TOA_UNKNOWN
    digits = number.lstrip("+")
    if len(digits) > 20:
        raise TpduError(f"address {number!r} is over 20 digits")
    if smsc and not digits:
        return b"\x00"  # "use the SMSC stored in the SIM" (TS 27.005 §3.1)
    body = _bcd(digits)
    length = len(body) + 1 if smsc else len(digits)
    return bytes((length, toa)) + body


def decode_address(data: bytes, pos: int, *, smsc: bool = False) -> tuple[str, int]:
    """The address at ``pos`` and the position after it."""
    if pos >= len(data):
        raise TpduError("address missing")
    length = data[pos]
    if smsc:
        if length == 0:
            return "", pos + 1
        octets = length - 1
    else:
        octets = (length + 1) // 2
    end = pos + 2 + octets
    if end > len(data):
        raise TpduError(f"address of length {length} runs past the PDU")
    toa = data[pos + 1]
    body = data[pos + 2 : end]
    if (toa >> 4) & 0x07 == 0x05:  # alphanumeric: semi-octet count → septets
        septets = (length * 4) // 7 if not smsc else (octets * 8) // 7
        text = decode_septets(unpack_septets(body, septets))
        return text.rstrip("@") if smsc else text, end
    digits = _unbcd(body)
    if not smsc:
        digits = digits[:length]
    plus = "+" if (toa >> 4) & 0x07 == 0x01 and digits else ""
    return plus + digits, end


def _bcd(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "f"
    out = bytearray()
    for i in range(0, len(digits), 2):
        lo, hi = digits[i], digits[i + 1]
        out.append(_nibble(lo) | (_nibble(hi) << 4))
    return bytes(out)


def _nibble(ch: str) -> int:
    if ch == "f":
        return 0xF
    index = _SEMI.find(ch)
    if index < 0:
        raise TpduError(f"{ch!r} is no address digit")
    return index


def _unbcd(body: bytes) -> str:
    out: list[str] = []
    for b in body:
        for nib in (b & 0x0F, b >> 4):
            if nib == 0x0F:
                return "".join(out)
            out.append(_SEMI[nib])
    return "".join(out)


# ---- time stamps (TS 23.040 §9.2.3.11) ---------------------------------------------------


def _swap(value: int) -> int:
    return ((value % 10) << 4) | (value // 10)


def _unswap(octet: int) -> int:
    return (octet & 0x0F) * 10 + (octet >> 4)


def encode_scts(when: dt.datetime) -> bytes:
    """Seven semi-octet pairs: year..second, then the zone in quarter hours (bit 3 of the
    swapped octet is the sign)."""
    offset = when.utcoffset() or dt.timedelta(0)
    quarters = int(offset.total_seconds()) // 900
    zone = _swap(abs(quarters)) | (0x08 if quarters < 0 else 0)
    fields = (when.year % 100, when.month, when.day, when.hour, when.minute, when.second)
    return bytes(_swap(v) for v in fields) + bytes((zone,))


def decode_scts(data: bytes) -> dt.datetime:
    if len(data) != 7:
        raise TpduError("a time stamp is 7 octets")
    year, month, day, hour, minute, second = (_unswap(b) for b in data[:6])
    tz = data[6]
    quarters = (tz & 0x07) * 10 + (tz >> 4)
    if tz & 0x08:
        quarters = -quarters
    zone = dt.timezone(dt.timedelta(minutes=15 * quarters))
    try:
        # Two-digit years: 90-99 are the 1990s (GSM began in 1991), the rest this century.
        century = 1900 if year >= 90 else 2000
        return dt.datetime(century + year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError as exc:
        raise TpduError(f"bad time stamp {data.hex()}: {exc}") from exc


# ---- validity (TS 23.040 §9.2.3.12.1) ----------------------------------------------------


def vp_relative(minutes: int) -> int:
    """The TP-VP octet for at least ``minutes`` (rounded up to the next step, max 63 weeks)."""
    if minutes <= 12 * 60:
        return max(0, (minutes + 4) // 5 - 1)
    if minutes <= 24 * 60:
        return 143 + (minutes - 12 * 60 + 29) // 30
    days = (minutes + 24 * 60 - 1) // (24 * 60)
    if days <= 30:
        return 166 + days
    return min(255, 192 + (days + 6) // 7)


# ---- SMS-SUBMIT (TS 23.040 §9.2.2.2) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Submit:
    recipient: str
    dcs: int
    user_data: bytes  # UDH (if any) + text; GSM-7 as unpacked septets, one per byte
    udl: int  # TP-UDL as on the wire (septets for GSM-7, octets otherwise)
    mr: int = 0
    srr: bool = False
    vp: int | None = None  # relative TP-VP octet
    udhi: bool = False
    smsc: str = ""


def encode_submit(
    *,
    recipient: str,
    user_data: bytes,
    udl: int,
    dcs: int,
    udhi: bool,
    mr: int = 0,
    srr: bool = False,
    vp: int | None = None,
    smsc: str = "",
) -> tuple[bytes, int]:
    """(SMSC prefix + TPDU, TPDU length for ``+CMGS=<length>``). ``user_data`` is already
    packed as it goes on the wire."""
    if not 0 <= mr <= 255:
        raise TpduError(f"TP-MR must be 0..255, got {mr}")
    first = MTI_SUBMIT | (0x10 if vp is not None else 0) | (0x20 if srr else 0)
    first |= 0x40 if udhi else 0
    tpdu = bytearray((first, mr))
    tpdu += encode_address(recipient)
    tpdu += bytes((0x00, dcs))  # TP-PID 0: plain SME-to-SME (§9.2.3.9)
    if vp is not None:
        tpdu.append(vp)
    tpdu.append(udl)
    tpdu += user_data
    return encode_address(smsc, smsc=True) + bytes(tpdu), len(tpdu)


@dataclass(frozen=True, slots=True)
class SubmitPart:
    pdu: bytes  # SMSC prefix + TPDU
    length: int  # TPDU octets, for +CMGS=<length>


def submit_parts(
    text: str,
    encoding: Encoding,
    *,
    recipient: str,
    ref: int,
    srr: bool,
    vp: int | None,
    smsc: str = "",
    wide: bool = False,
) -> list[SubmitPart]:
    """The SMS-SUBMIT of each part of ``text`` with TP-MR 0: the modem numbers each part
    itself and says which number in ``+CMGS: <mr>`` (TS 27.005 §3.5.1)."""
    out = []
    for udh, data, udl, dcs in _pieces(text, encoding, ref=ref, wide=wide):
        pdu, length = encode_submit(
            recipient=recipient,
            user_data=udh + data,
            udl=udl,
            dcs=dcs,
            udhi=bool(udh),
            srr=srr,
            vp=vp,
            smsc=smsc,
        )
        out.append(SubmitPart(pdu, length))
    return out


def _pieces(
    text: str, encoding: Encoding, *, ref: int, wide: bool
) -> list[tuple[bytes, bytes, int, int]]:
    """(UDH, packed text, TP-UDL, TP-DCS) of each part. A GSM-7 TP-UDL counts septets,
    the header's included with its fill bits (TS 23.040 §9.2.3.16): the packed length alone
    cannot tell a trailing ``@`` from padding (TS 23.038 §6.1.2.3.1)."""
    pieces = split(text, encoding, wide=wide)
    total = len(pieces)
    out = []
    for seq, piece in enumerate(pieces, start=1):
        udh = build_concat_udh(ref, total, seq, wide=wide) if total > 1 else b""
        if encoding is Encoding.GSM7:
            septets = encode_septets(piece)
            fill = fill_bits_for(len(udh)) if udh else 0
            data = pack_septets(septets, fill_bits=fill)
            udl = (len(udh) * 8 + fill) // 7 + len(septets)
            out.append((udh, data, udl, DCS_GSM7))
        elif encoding is Encoding.UCS2:
            data = encode_ucs2(piece)
            out.append((udh, data, len(udh) + len(data), DCS_UCS2))
        else:
            data = piece.encode("latin-1")
            out.append((udh, data, len(udh) + len(data), DCS_8BIT))
    return out


# ---- user data (TS 23.040 §9.2.3.24) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserData:
    concat: UdhInfo | None
    body: bytes  # without the UDH; GSM-7 as unpacked septets (what codecs.text decodes)
    text: str


def _user_data(dcs: int, udhi: bool, udl: int, raw: bytes) -> UserData:
    coding = _alphabet(dcs)
    concat: UdhInfo | None = None
    if coding == DCS_GSM7:
        udh_len = raw[0] + 1 if udhi and raw else 0
        fill = fill_bits_for(udh_len) if udh_len else 0
        skip = (udh_len * 8 + fill) // 7
        if udh_len:
            try:
                concat, _ = parse_udh(raw[:udh_len])
            except UdhError as exc:
                raise TpduError(str(exc)) from exc
        count = udl - skip
        if count < 0:
            raise TpduError(f"TP-UDL {udl} is shorter than the header")
        try:
            body = unpack_septets(raw[udh_len:], count, fill_bits=fill)
        except ValueError as exc:
            raise TpduError(str(exc)) from exc
        return UserData(concat, body, decode_text(body, 0))
    data = raw[:udl]
    if len(data) < udl:
        raise TpduError(f"TP-UDL {udl} runs past the PDU")
    if udhi:
        try:
            concat, data = parse_udh(data)
        except UdhError as exc:
            raise TpduError(str(exc)) from exc
    return UserData(concat, data, decode_text(data, coding))


def _alphabet(dcs: int) -> int:
    """TS 23.038 §4: the character set of a TP-DCS as 0 (GSM-7), 4 (8-bit) or 8 (UCS-2)."""
    group = dcs >> 4
    if group <= 0x07:  # general data coding (and the automatic-deletion group)
        # bits 3-2: 00 default alphabet, 01 8-bit, 10 UCS-2, 11 reserved (read as GSM-7)
        return {0: DCS_GSM7, 1: DCS_8BIT, 2: DCS_UCS2}.get((dcs >> 2) & 0x03, DCS_GSM7)
    if group == 0x0F:
        return DCS_8BIT if dcs & 0x04 else DCS_GSM7
    if group == 0x0E:
        return DCS_UCS2  # message waiting, store, UCS-2
    return DCS_GSM7  # message waiting groups C, D: default alphabet


# ---- SMS-DELIVER (TS 23.040 §9.2.2.1) ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deliver:
    smsc: str
    sender: str
    pid: int
    dcs: int
    scts: dt.datetime
    concat: UdhInfo | None
    body: bytes
    text: str

    @property
    def alphabet(self) -> int:
        return _alphabet(self.dcs)


def _strip_smsc(pdu: bytes) -> tuple[str, bytes]:
    smsc, pos = decode_address(pdu, 0, smsc=True)
    return smsc, pdu[pos:]


def decode_deliver(pdu: bytes) -> Deliver:
    """An SMS-DELIVER with its SMSC prefix (what +CMT and +CMGR give in PDU mode)."""
    smsc, t = _strip_smsc(pdu)
    try:
        first = t[0]
        if first & 0x03 != MTI_DELIVER:
            raise TpduError(f"TP-MTI {first & 3} is no SMS-DELIVER")
        sender, pos = decode_address(t, 1)
        pid, dcs = t[pos], t[pos + 1]
        scts = decode_scts(t[pos + 2 : pos + 9])
        udl = t[pos + 9]
    except IndexError as exc:
        raise TpduError("SMS-DELIVER cut short") from exc
    ud = _user_data(dcs, bool(first & 0x40), udl, t[pos + 10 :])
    return Deliver(smsc, sender, pid, dcs, scts, ud.concat, ud.body, ud.text)


def encode_deliver(
    *,
    sender: str,
    text: str,
    encoding: Encoding,
    scts: dt.datetime,
    smsc: str = "",
    ref: int = 0,
    wide: bool = False,
) -> list[bytes]:
    """SMS-DELIVER PDUs (SMSC prefix included) for ``text``: what a fake modem hands over."""
    out = []
    for udh, data, udl, dcs in _pieces(text, encoding, ref=ref, wide=wide):
        first = MTI_DELIVER | 0x04 | (0x40 if udh else 0)  # 0x04 TP-MMS: no more messages
        tpdu = bytes((first,)) + encode_address(sender) + bytes((0, dcs))
        tpdu += encode_scts(scts) + bytes((udl,)) + udh + data
        out.append(encode_address(smsc, smsc=True) + tpdu)
    return out


# ---- SMS-STATUS-REPORT (TS 23.040 §9.2.2.3) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusReport:
    smsc: str
    mr: int
    recipient: str
    scts: dt.datetime  # when the SC took the message
    discharge: dt.datetime  # when it was delivered (or the attempt failed)
    status: int  # TP-ST §9.2.3.15: 0x00-0x1F done, 0x20-0x3F still trying, 0x40+ failed

    @property
    def final(self) -> bool:
        return not 0x20 <= self.status <= 0x3F


def decode_status_report(pdu: bytes) -> StatusReport:
    """An SMS-STATUS-REPORT with its SMSC prefix (+CDS, and +CMGR of a +CDSI entry)."""
    smsc, t = _strip_smsc(pdu)
    try:
        first = t[0]
        if first & 0x03 != MTI_STATUS_REPORT:
            raise TpduError(f"TP-MTI {first & 3} is no SMS-STATUS-REPORT")
        mr = t[1]
        recipient, pos = decode_address(t, 2)
        scts = decode_scts(t[pos : pos + 7])
        discharge = decode_scts(t[pos + 7 : pos + 14])
        status = t[pos + 14]
    except IndexError as exc:
        raise TpduError("SMS-STATUS-REPORT cut short") from exc
    return StatusReport(smsc, mr, recipient, scts, discharge, status)


def encode_status_report(
    *,
    mr: int,
    recipient: str,
    scts: dt.datetime,
    discharge: dt.datetime,
    status: int,
    smsc: str = "",
) -> bytes:
    first = MTI_STATUS_REPORT | 0x20  # TP-SRQ: the report answers an SRR'd submit
    tpdu = bytes((first, mr)) + encode_address(recipient)
    tpdu += encode_scts(scts) + encode_scts(discharge) + bytes((status,))
    return encode_address(smsc, smsc=True) + tpdu


def decode_submit(pdu: bytes) -> Submit:
    """An SMS-SUBMIT with its SMSC prefix: what the fake modem receives."""
    smsc, t = _strip_smsc(pdu)
    try:
        first = t[0]
        if first & 0x03 != MTI_SUBMIT:
            raise TpduError(f"TP-MTI {first & 3} is no SMS-SUBMIT")
        mr = t[1]
        recipient, pos = decode_address(t, 2)
        dcs = t[pos + 1]
        pos += 2
        vpf = (first >> 3) & 0x03
        vp: int | None = None
        if vpf == 0x02:
            vp = t[pos]
            pos += 1
        elif vpf in (0x01, 0x03):
            pos += 7
        udl = t[pos]
    except IndexError as exc:
        raise TpduError("SMS-SUBMIT cut short") from exc
    udhi = bool(first & 0x40)
    return Submit(recipient, dcs, t[pos + 1 :], udl, mr, bool(first & 0x20), vp, udhi, smsc)


def submit_text(s: Submit) -> UserData:
    """The concatenation header and text of a decoded SMS-SUBMIT."""
    return _user_data(s.dcs, s.udhi, s.udl, s.user_data)
