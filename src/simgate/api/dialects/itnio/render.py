"""Pure renderings of the itniotech dialect: statuses, times, money, records (spec §1, §7).

The one mapping table from the internal State (design principle 4) lives here and serves
getReport, getSentRcd and the delivery push alike.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from phonenumbers import NumberParseException, carrier, parse

from simgate.domain import mcc as e212
from simgate.domain.messages import State
from simgate.domain.money import format_amount
from simgate.domain.records import InboundRecord, MessageRecord, SentRow
from simgate.services.itnio import ReportRow

S = State

# State → (getReport, getReport when no report was requested, getSentRcd; None = not
# listed). Spec §7: getReport 0 delivered (or sent without a report), -1 in progress
# (queued, submitted, sent awaiting report, UNKNOWN), 1 failed/expired/rejected;
# getSentRcd 0 sent or delivered, 2 failed, queued and unresolved messages not listed.
STATUS: dict[State, tuple[str, str, str | None]] = {
    S.ACCEPTED: ("-1", "-1", None),
    S.QUEUED: ("-1", "-1", None),
    S.SUBMITTING: ("-1", "-1", None),
    S.SENT: ("-1", "0", "0"),
    S.DELIVERED: ("0", "0", "0"),
    S.FAILED: ("1", "1", "2"),
    S.EXPIRED: ("1", "1", "2"),
    S.REJECTED: ("1", "1", "2"),
    S.UNKNOWN: ("-1", "-1", None),
}
_EPOCH = date(1970, 1, 1)

SENT_RCD_STATES: tuple[State, ...] = tuple(s for s, v in STATUS.items() if v[2] is not None)

_ISO = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2})\Z")


@functools.lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


@functools.lru_cache(maxsize=16384)
def _offset(tz: str, quarter: int) -> tuple[int, str]:
    """UTC offset (seconds, "+08:00") of ``tz`` in one quarter hour: zone transitions fall
    on quarter hours of UTC, so one lookup serves every second of it."""
    delta = datetime.fromtimestamp(quarter * 900, zone(tz)).utcoffset()
    off = int(delta.total_seconds()) if delta is not None else 0
    hours, minutes = divmod(abs(off) // 60, 60)
    return off, f"{'+' if off >= 0 else '-'}{hours:02d}:{minutes:02d}"


@functools.lru_cache(maxsize=4096)
def _date(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).isoformat()


@functools.lru_cache(maxsize=16384)
def _quarter(tz: str, quarter: int) -> tuple[str, int, str] | None:
    """The local ``yyyy-MM-ddTHH:`` of one UTC quarter hour, its first minute and the offset
    text; None when the offset is not whole quarter hours (local quarters would straddle)."""
    off, suffix = _offset(tz, quarter)
    if off % 900:
        return None
    day, rest = divmod(quarter * 900 + off, 86_400)
    hour, rest = divmod(rest, 3600)
    return f"{_date(day)}T{hour:02d}:", rest // 60, suffix


def iso(ms: int | None, tz: str) -> str:
    """``2021-02-12T09:30:03+08:00`` in the account's zone (spec §1.5); "" when unknown.

    Arithmetic with cached offsets: ``datetime.isoformat`` with a ZoneInfo costs more than
    the query per row of a 50 000-row getSentRcd page (bench/itnio_query.py). One cached
    look-up per quarter hour gives the date and hour, the rest is the seconds within it
    (getReport's rendering was half of its time on the event loop, issue 15 "reads").
    """
    if ms is None:
        return ""
    sec = ms // 1000
    quarter, within = divmod(sec, 900)
    known = _quarter(tz, quarter)
    if known is None:  # an offset in odd minutes or seconds (local mean times before 1972)
        return _iso_any(sec, tz)
    head, first_minute, suffix = known
    minute, second = divmod(within, 60)
    return f"{head}{first_minute + minute:02d}:{second:02d}{suffix}"


def _iso_any(sec: int, tz: str) -> str:
    off, suffix = _offset(tz, sec // 900)
    day, rest = divmod(sec + off, 86_400)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    return f"{_date(day)}T{hour:02d}:{minute:02d}:{second:02d}{suffix}"


def plain_time(ms: int, tz: str) -> str:
    """``yyyy-MM-dd HH:mm:ss`` (pushMoSmsReport ``reply_time``, spec §1.10)."""
    return datetime.fromtimestamp(ms / 1000, zone(tz)).strftime("%Y-%m-%d %H:%M:%S")


def parse_iso(text: str) -> int | None:
    """Epoch ms of an ISO 8601 time with an offset; None when it is not one.

    A ``+`` that reached us unencoded in a query string arrives as a space: put it back.
    """
    value = text.strip() if len(text) < 64 else ""
    if len(value) >= 25 and value[-6] == " ":
        value = value[:-6] + "+" + value[-5:]
    if not _ISO.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(parsed.timestamp() * 1000)


def receive_ms(m: MessageRecord) -> int | None:
    """When the status a client sees was reached: final, else sent."""
    return m.final_ms if m.final_ms is not None else m.sent_ms


def report_status(m: MessageRecord) -> str:
    row = STATUS[m.state]
    return row[0] if m.report_requested else row[1]


def price_detail(*, charge: int, parts: int, price: int, currency: str) -> dict[str, Any]:
    return {
        "pay": format_amount(charge),
        "chargeCnt": parts,
        "currency": currency,
        "price": format_amount(price),
    }


def report_item(m: MessageRecord, tz: str) -> dict[str, Any]:
    return {
        "msgId": str(m.id),
        "number": m.recipient,
        "receiveTime": iso(receive_ms(m), tz),
        "status": report_status(m),
        "pricedetail": price_detail(
            charge=m.charge_micros, parts=m.parts, price=m.price_micros, currency=m.currency
        ),
    }


# getReport's status by (stored state, report requested): one lookup per row.
_REPORT_STATUS: dict[tuple[int, bool], str] = {
    (int(s), requested): v[0] if requested else v[1]
    for s, v in STATUS.items()
    for requested in (True, False)
}


@functools.lru_cache(maxsize=1024)
def _amount(micros: int) -> str:
    """:func:`format_amount` for the few prices and charges a report repeats (a Decimal
    normalize per row cost more than the rest of the row's rendering)."""
    return format_amount(micros)


def report_row_item(row: ReportRow, tz: str) -> dict[str, Any]:
    """:func:`report_item` from getReport's plain row (store/dialects/itnio.py ``ReportRow``),
    the same item, key for key: no record built per row (issue 15 "reads")."""
    mid, number, state, requested, reached_ms, charge, parts, price, currency = row
    return {
        "msgId": str(mid),
        "number": number,
        "receiveTime": iso(reached_ms, tz),
        "status": _REPORT_STATUS[state, bool(requested)],
        "pricedetail": {
            "pay": _amount(charge),
            "chargeCnt": parts,
            "currency": currency,
            "price": _amount(price),
        },
    }


_SENT_RCD_STATUS: dict[State, str] = {s: v[2] for s, v in STATUS.items() if v[2] is not None}


def sent_row_item(row: SentRow, tz: str) -> dict[str, Any]:
    """A getSentRcd item (spec §1.6): the time shown is when the listed state was reached."""
    return {
        "msgId": str(row.id),
        "number": row.recipient,
        "receiveTime": iso(row.reached_ms, tz),
        "status": _SENT_RCD_STATUS[row.state],
    }


def mcc_mnc(imsi: str) -> tuple[int, int]:
    """From the receiving SIM's IMSI as Ints (recordMo, pushMoSmsReport); -1 when unknown."""
    split = e212.split_imsi(imsi)
    if split is None:
        return -1, -1
    return int(split[0]), int(split[1])


def destination_mcc(number: str) -> str:
    """pushSmsReport ``mcc``: the destination country's MCC as a String (spec "Amendments")."""
    return e212.of_number(number) or e212.UNKNOWN


@functools.lru_cache(maxsize=4096)
def operator_of(number: str) -> str:
    try:
        return str(carrier.name_for_number(parse("+" + number, None), "en"))
    except NumberParseException:
        return ""


def mo_record(r: InboundRecord, tz: str, currency: str) -> dict[str, Any]:
    """A recordMo record (spec §1.8); incoming SMS are free."""
    mcc, mnc = mcc_mnc(r.imsi)
    return {
        "number": r.sender,
        "sendId": r.recipient,
        "receiveTime": iso(r.received_ms, tz),
        "content": r.text,
        "mcc": mcc,
        "mnc": mnc,
        "operator": operator_of(r.sender),
        "pricedetail": price_detail(charge=0, parts=r.parts, price=0, currency=currency),
    }
