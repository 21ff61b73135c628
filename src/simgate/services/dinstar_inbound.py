"""Dinstar ``incoming_sms_id``: numbered in the transaction that stores the SMS (spec §2.5).

A bus subscriber (services/events.py) that runs before the push outbox. Every stored incoming
SMS gets its number here, pushes or not, so polling clients (query_incoming_sms, with a
high-water mark) see the numbers in commit order; the numbers are left in the notes for the
Dinstar push format (the ``sms`` push carries them, spec §2.9).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.events import DomainEvent, InboundReceived
from simgate.services.dinstar import number_inbound as number
from simgate.services.events import Notes, reads_messages_of

INBOUND_SEQ = "dinstar.inbound_seq"  # note: {inbound_id: incoming_sms_id}


@reads_messages_of()  # incoming SMS only: no message record is built for it
async def number_inbound(
    conn: AsyncConnection, events: Sequence[DomainEvent], notes: Notes
) -> None:
    ids = [e.record.id for e in events if isinstance(e, InboundReceived)]
    if ids:
        notes[INBOUND_SEQ] = await number(conn, ids)
