"""Messages to accept, for the tests of the accept path (store, services, dialects): one
``NewMessage`` with plain values for everything a test is not about, and the
``AcceptJob`` that charges and queues a run of them."""

from __future__ import annotations

from typing import Any

from simgate.codecs.segments import Encoding
from simgate.domain.records import NewMessage
from simgate.services.accept_writer import AcceptJob

PRICE = 10_000  # micros per part
FAR = 10**13  # a validity no test reaches

_PLAIN: dict[str, Any] = {
    "app_id": None,
    "dialect": "test",
    "client_ref": None,
    "task_id": None,
    "sender": "",
    "recipient": "8613800138000",
    "text": "hello",
    "encoding": Encoding.GSM7,
    "parts": 1,
    "port_hint": None,
    "line": "sim",
    "price_micros": PRICE,
    "currency": "USD",
    "report_requested": True,
    "validity_until_ms": FAR,
}


def new_message(mid: int, account_id: int, **changes: Any) -> NewMessage:
    """Message ``mid`` of ``account_id``: one GSM-7 part "hello" to 8613800138000 on line
    ``sim`` at :data:`PRICE`, a report asked for, valid until :data:`FAR`, unless
    ``changes`` say else."""
    return NewMessage(id=mid, account_id=account_id, **{**_PLAIN, **changes})


def new_messages(first_id: int, count: int, account_id: int, **changes: Any) -> list[NewMessage]:
    """``count`` of :func:`new_message`, ids from ``first_id`` on."""
    return [new_message(first_id + i, account_id, **changes) for i in range(count)]


def accept_job(
    account_id: int,
    first_id: int,
    count: int = 1,
    *,
    total_micros: int | None = None,
    now_ms: int = 1_000,
    **kw: Any,
) -> AcceptJob:
    """The accept of ``count`` :func:`new_message` rows from ``first_id`` on, charged
    ``count`` × :data:`PRICE` unless ``total_micros`` says else (``kw``: the job's ``also``)."""
    return AcceptJob(
        account_id=account_id,
        total_micros=PRICE * count if total_micros is None else total_micros,
        rows=new_messages(first_id, count, account_id),
        now_ms=now_ms,
        **kw,
    )
