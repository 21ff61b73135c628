"""Pure renderings: stored records → the Dinstar wire objects (spec §2.3-§2.9).

Shared by the query endpoints and the push format, so a push and a query never disagree.
Field order follows the vendor samples.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from simgate.domain.messages import State
from simgate.domain.records import InboundRecord, MessageRecord

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# One table from the internal states to the vendor's send statuses (spec §2.3, §7).
# UNKNOWN = "may have left, no answer yet": still in progress for the client. A message
# whose delivery report failed is FAILED here; its status_code is in sms_deliver_status.
RESULT_STATUS: dict[State, str] = {
    State.ACCEPTED: "SENDING",
    State.QUEUED: "SENDING",
    State.SUBMITTING: "SENDING",
    State.UNKNOWN: "SENDING",
    State.SENT: "SENT_OK",
    State.DELIVERED: "DELIVERED",
    State.FAILED: "FAILED",
    State.EXPIRED: "FAILED",
    State.REJECTED: "FAILED",
}

NO_PORT = -1  # not sent yet: no port, no ref_id


@functools.lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def fmt_time(ms: int, tz: str = "UTC") -> str:
    return datetime.fromtimestamp(ms / 1000, tz=zone(tz)).strftime(TIME_FORMAT)


def parse_time(text: str, tz: str = "UTC") -> int:
    """``YYYY-MM-DD HH:MM:SS`` in the account's zone → epoch ms; ValueError if malformed."""
    dt = datetime.strptime(text, TIME_FORMAT).replace(tzinfo=zone(tz))
    # timestamp(), not astimezone(UTC): year 1 east of UTC (or 9999 west) has no UTC date
    # and would overflow (issue 14 item 9); the caller clamps to the years ids can carry.
    return int(dt.timestamp() * 1000)


def user_id_of(m: MessageRecord) -> int:
    """The send's ``user_id``; 0 when it gave none (spec Amendments: every row carries one,
    as typed clients build their result objects with it required)."""
    ref = m.client_ref
    return int(ref) if ref is not None and ref.isdigit() else 0


def send_time_ms(m: MessageRecord) -> int:
    return m.sent_ms if m.sent_ms is not None else m.accepted_ms


def report_time_ms(m: MessageRecord) -> int:
    """When the last part's report arrived (spec §7: the deliver-status ``time``)."""
    if m.state is State.DELIVERED and m.delivered_ms is not None:
        return m.delivered_ms
    if m.failed_ms is not None:
        return m.failed_ms
    return m.updated_ms


def has_delivery_status(m: MessageRecord) -> bool:
    """Every part has a report (spec §7: the status is published once, when all are in)."""
    return m.state in (State.DELIVERED, State.FAILED) and 0 < m.parts <= m.parts_reported


def sms_result(m: MessageRecord, *, port: int | None, imsi: str, tz: str = "UTC") -> dict[str, Any]:
    return {
        "port": NO_PORT if port is None else port,
        "user_id": user_id_of(m),
        "number": m.recipient,
        "time": fmt_time(send_time_ms(m), tz),
        "status": RESULT_STATUS[m.state],
        "count": m.parts,
        "succ_count": m.parts_ok,
        "ref_id": NO_PORT if m.first_ref is None else m.first_ref,
        "imsi": imsi,
    }


def deliver_status(
    m: MessageRecord, *, port: int | None, imsi: str, tz: str = "UTC"
) -> dict[str, Any]:
    # Worst part wins (spec §7): the store settles status_code as the highest part code.
    return {
        "port": NO_PORT if port is None else port,
        "number": m.recipient,
        "time": fmt_time(report_time_ms(m), tz),
        "ref_id": NO_PORT if m.first_ref is None else m.first_ref,
        "status_code": m.status_code or 0,
        "imsi": imsi,
    }


def incoming_sms(r: InboundRecord, *, seq: int, port: int, tz: str = "UTC") -> dict[str, Any]:
    return {
        "incoming_sms_id": seq,
        "port": port,
        "number": r.sender,
        "smsc": r.smsc,
        "timestamp": fmt_time(r.received_ms, tz),
        "text": r.text,
        "imsi": r.imsi,
    }


def register(
    *, port: int, up: bool, iccid: str, imsi: str, number: str, sequence: int
) -> dict[str, Any]:
    # On "down" the vendor sends the literal "<NULL>" for the SIM identities (spec §2.9).
    return {
        "port": port,
        "iccid": iccid if up else "<NULL>",
        "imsi": imsi if up else "<NULL>",
        "number": number,
        "status": "up" if up else "down",
        "sequence": sequence,
        "slot": 255,  # not a multi-SIM module (spec §2.8)
    }
