"""Tables of the Dinstar gateway dialect, on the shared ``metadata`` (migration 0004_dinstar).

- ``dinstar_inbound``: the gateway-local ``incoming_sms_id`` (spec §2.5). Clients keep it in a
  32-bit int (the Java client's ``int incomingSmsId``) and use it as a high-water mark, so it
  is a small autoincrement number handed out in commit order, not simgate's 19-digit id.
- ``dinstar_ussd``: the last USSD reply per port (spec §2.7, ``query_ussd_reply``), kept in
  the database so an API process sees what the process driving the line received.
- ``ix_messages_recipient``: ``query_sms_result``/``query_sms_deliver_status`` filter by number.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from simgate.store.tables import messages, metadata

dinstar_inbound = Table(
    "dinstar_inbound",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("inbound_id", BigInteger, nullable=False, unique=True),
    sqlite_autoincrement=True,
)

dinstar_ussd = Table(
    "dinstar_ussd",
    metadata,
    Column("line", String(64), primary_key=True),
    Column("port", Integer, primary_key=True, autoincrement=False),
    Column("text", Text, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    # Who asked (issue 14 item 1): only that account's users (and operators) see the reply;
    # NULL for replies kept before migration 0010 (operators only).
    Column("account_id", Integer, nullable=True),
)

ix_messages_recipient = Index(
    "ix_messages_recipient", messages.c.account_id, messages.c.recipient, messages.c.id
)
