"""Rendering: the state table, times, ports and rows (spec §3.3, §3.5, §7).

One table maps simgate's states to the OpenVox words (principle 4). Times are shown, and
filter times read, in the account's time zone (§7 "All families"), as ``YYYY-MM-DD HH:MM:SS``.
Ports are 1-based on the wire and 0-based inside simgate (PortInfo.index).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from simgate.api.dialects.openvox.envelope import Paged
from simgate.domain.messages import State
from simgate.domain.records import InboundRecord, MessageRecord
from simgate.lines.base import Line, PortInfo
from simgate.services.openvox import OutboxRow

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_EPOCH = date(1970, 1, 1)

# smsoutbox/get (§3.3, seed 002; "DELIVERD" is the vendor's spelling). States missing here
# are still in flight (or UNKNOWN, not resolved yet) and are not listed, as in the firmware,
# whose outbox row is written only once the module answered (§3.5).
OUTBOX_STATUS: dict[State, str] = {
    State.SENT: "SENT",
    State.DELIVERED: "DELIVERD",
    State.FAILED: "FAILED",
    State.EXPIRED: "FAILED",
    State.REJECTED: "FAILED",
}
LISTED_STATES: tuple[State, ...] = tuple(OUTBOX_STATUS)

# /sms/send items (§7): final SENT/FAILED, or SENDING while the line has not answered.
SEND_STATUS: dict[State, str] = {
    State.SENT: "SENT",
    State.DELIVERED: "SENT",
    State.FAILED: "FAILED",
    State.EXPIRED: "FAILED",
    State.REJECTED: "FAILED",
}
SENDING = "SENDING"


@functools.lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@functools.lru_cache(maxsize=16384)
def _offset_s(tz: str, quarter: int) -> int:
    """UTC offset (seconds) of ``tz`` in one quarter hour: zone transitions fall on quarter
    hours of UTC, so one lookup serves every second of it."""
    delta = datetime.fromtimestamp(quarter * 900, zone(tz)).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


@functools.lru_cache(maxsize=4096)
def _day(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).isoformat()


def format_time(ms: int, tz: str = "UTC") -> str:
    """``Y-m-d H:i:s`` in the account's zone (:data:`TIME_FORMAT`), by arithmetic with
    cached offsets: a ``datetime`` with a ZoneInfo and ``strftime`` per row cost as much as
    the number filter's whole page read (issue 15 "reads", bench/openvox_outbox.py)."""
    sec = ms // 1000
    day, rest = divmod(sec + _offset_s(tz, sec // 900), 86_400)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    return f"{_day(day)} {hour:02d}:{minute:02d}:{second:02d}"


_PARSE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%d",
    "%Y/%m/%d",
)


def parse_time(text: str, tz: str, *, end_of_day: bool = False) -> int | None:
    """Epoch ms of a filter time in the account's zone; None when it matches no format.

    The doc writes the format as PHP's ``Y-m-d H:i:s`` (§3.3); date-only and slash forms are
    accepted too, as the firmware's own pages use ``YYYY/MM/DD`` (§3.4). A date alone as an
    end bound means the end of that day.
    """
    text = text.strip()
    for fmt in _PARSE_FORMATS:
        try:
            naive = datetime.strptime(text, fmt)
        except ValueError:
            continue
        ms = int(naive.replace(tzinfo=zone(tz)).timestamp() * 1000)
        return ms + 86_399_999 if end_of_day and "%H" not in fmt else ms
    return None


def port_name(lines: dict[str, Line], line: str | None, port: int | None) -> str:
    """The configured name of a port (§7: ``gsm-1.N`` by default), "" when unknown."""
    if port is None:
        return ""
    known = lines.get(line or "")
    if known is not None:
        ports = known.ports()
        if 0 <= port < len(ports):
            return ports[port].name
    return f"gsm-1.{port + 1}"


def port_info(lines: dict[str, Line], line: str | None, port: int | None) -> PortInfo | None:
    known = lines.get(line or "")
    if known is None or port is None:
        return None
    ports = known.ports()
    return ports[port] if 0 <= port < len(ports) else None


def wire_port(port: int | None) -> int:
    """1-based port for the wire; 0 when the message never reached a port."""
    return 0 if port is None else port + 1


def outbox_row(m: MessageRecord | OutboxRow, lines: dict[str, Line], tz: str) -> dict[str, object]:
    return {
        "id": str(m.id),  # 19 digits: a string, so JavaScript clients keep every digit
        "port": wire_port(m.port),
        "port_name": port_name(lines, m.line, m.port),
        "phonenumber": m.recipient,
        "time": format_time(m.accepted_ms, tz),
        "message": m.text,
        "status": OUTBOX_STATUS.get(m.state, SENDING),
    }


def inbox_row(r: InboundRecord, lines: dict[str, Line], tz: str) -> dict[str, object]:
    return {
        "id": str(r.id),
        "port": wire_port(r.port),
        "port_name": port_name(lines, r.line, r.port),
        "phonenumber": r.sender,
        "time": format_time(r.received_ms, tz),
        "message": r.text,
        "smsc": r.smsc,
        "imsi": r.imsi,
    }


def page_data(total: int, page: int, page_size: int, records: Sequence[dict[str, object]]) -> Paged:
    """The rows are ``data``; ``total``, ``current_page`` and ``pages`` sit beside it (spec
    Amendments)."""
    pages = (total + page_size - 1) // page_size
    return Paged(rows=list(records), total=total, current_page=page, pages=pages)
