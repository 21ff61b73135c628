"""The core tables (SQLAlchemy Core), shared by SQLite and PostgreSQL, and the ``metadata``
every table module declares its tables on; store/schema.py assembles the whole schema.

Conventions: times are UTC epoch milliseconds in BIGINT columns; money is integer micros;
message ids are the 19-digit vendor-style ids (time-ordered, so key ranges are time ranges).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("currency", String(3), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("balance_micros", BigInteger, nullable=False),
    Column("gift_micros", BigInteger, nullable=False),
    Column("credit_micros", BigInteger, nullable=False),
    Column("locked", Boolean, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

# Every operator movement of an account's money (opening balance, top-ups, gifts,
# corrections): who, when, how much, why and the figures after it. Message charges and call
# debits are on their own rows (messages.charge_micros, calls), so the ledger plus those
# rebuilds balance + gift.
account_ledger = Table(
    "account_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount_micros", BigInteger, nullable=False),
    Column("balance_after_micros", BigInteger, nullable=False),
    Column("gift_after_micros", BigInteger, nullable=False),
    Column("made_by", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Index("ix_account_ledger_account", "account_id", "id"),
)

apps = Table(
    "apps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("app_id", String(32), nullable=False, unique=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("name", String(64), nullable=False),
    Column("push_json", Text, nullable=False, server_default="{}"),
    Column("created_ms", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("secret_enc", Text, nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("allow_ips", Text, nullable=False, server_default=""),
    Column("revoked", Boolean, nullable=False, server_default=text("false")),
    Column("created_ms", BigInteger, nullable=False),
)

gateway_users = Table(
    "gateway_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("digest_md5", String(64), nullable=False),
    Column("digest_sha256", String(64), nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    # domain.accounts.GatewayRole; rows from before migration 0010 are account users.
    Column("role", String(16), nullable=False, server_default="account"),
)

rates = Table(
    "rates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("price_micros", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("bill_period", String(16), nullable=False, server_default=""),
    UniqueConstraint("kind", "prefix", name="uq_rates_kind_prefix"),
)

# Counters handed out in blocks (message id sequences), so processes never collide.
id_blocks = Table(
    "id_blocks",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("next_value", BigInteger, nullable=False),
)

# Small documents owned by dialects (gateway push config, OpenVox url_* settings).
kv = Table(
    "kv",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),
)

# A line that can have only one driver at a time is owned through a lease row.
line_owners = Table(
    "line_owners",
    metadata,
    Column("line", String(64), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("lease_until_ms", BigInteger, nullable=False),
)

QUEUED_STATE = 1  # domain.messages.State.QUEUED, repeated here for the partial indexes
SUBMITTING_STATE = 2

messages = Table(
    "messages",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", Integer, nullable=False),
    Column("app_id", Integer, nullable=True),
    Column("dialect", String(16), nullable=False),
    Column("client_ref", String(64), nullable=True),
    Column("task_id", BigInteger, nullable=True),
    Column("sender", String(32), nullable=False),
    Column("recipient", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("encoding", SmallInteger, nullable=False),
    Column("parts", SmallInteger, nullable=False),
    Column("port_hint", String(128), nullable=True),
    Column("line", String(64), nullable=True),
    Column("port", Integer, nullable=True),
    Column("state", SmallInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    # Leases taken so far (each lease adds one): the try a line's late report names.
    Column("lease_seq", Integer, nullable=False, server_default="0"),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until_ms", BigInteger, nullable=True),
    Column("validity_until_ms", BigInteger, nullable=False),
    Column("report_requested", Boolean, nullable=False),
    Column("price_micros", BigInteger, nullable=False),
    Column("charge_micros", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("first_ref", Integer, nullable=True),
    Column("parts_ok", SmallInteger, nullable=False, server_default="0"),
    Column("parts_reported", SmallInteger, nullable=False, server_default="0"),
    Column("status_code", Integer, nullable=True),
    Column("error_text", String(255), nullable=True),
    Column("accepted_ms", BigInteger, nullable=False),
    Column("queued_ms", BigInteger, nullable=True),
    Column("submitting_ms", BigInteger, nullable=True),
    Column("sent_ms", BigInteger, nullable=True),
    Column("delivered_ms", BigInteger, nullable=True),
    Column("failed_ms", BigInteger, nullable=True),
    Column("expired_ms", BigInteger, nullable=True),
    Column("rejected_ms", BigInteger, nullable=True),
    Column("unknown_ms", BigInteger, nullable=True),
    Column("updated_ms", BigInteger, nullable=False),
)

# The queue: only QUEUED rows, ordered by due time, per line.
Index(
    "ix_messages_due",
    messages.c.line,
    messages.c.next_attempt_ms,
    sqlite_where=messages.c.state == QUEUED_STATE,
    postgresql_where=messages.c.state == QUEUED_STATE,
)
# The reaper: leases that may have expired.
Index(
    "ix_messages_leased",
    messages.c.lease_until_ms,
    sqlite_where=messages.c.state == SUBMITTING_STATE,
    postgresql_where=messages.c.state == SUBMITTING_STATE,
)
# Time-slot queries per app and per account scan the (time-ordered) id range.
Index("ix_messages_app_id", messages.c.app_id, messages.c.id)
Index("ix_messages_account_id", messages.c.account_id, messages.c.id)
Index(
    "ix_messages_client_ref",
    messages.c.account_id,
    messages.c.client_ref,
    sqlite_where=messages.c.client_ref.is_not(None),
    postgresql_where=messages.c.client_ref.is_not(None),
)
Index(
    "ix_messages_task",
    messages.c.task_id,
    sqlite_where=messages.c.task_id.is_not(None),
    postgresql_where=messages.c.task_id.is_not(None),
)

message_parts = Table(
    "message_parts",
    metadata,
    Column("message_id", BigInteger, primary_key=True, autoincrement=False),
    Column("seq", SmallInteger, primary_key=True, autoincrement=False),
    Column("line", String(64), nullable=False),
    Column("port", Integer, nullable=True),
    # The line's id for the part: an SMPP message_id, or a TP-MR (0..255) on a modem port.
    Column("line_ref", String(80), nullable=False),
    # None = no report yet; else 0 delivered, else the line's failure code.
    Column("status_code", Integer, nullable=True),
    Column("reported_ms", BigInteger, nullable=True),
)
Index("ix_parts_ref", message_parts.c.line, message_parts.c.line_ref)

# Delivery reports that arrived before the part they report on was recorded (an SMSC often
# answers submit_sm_resp after the receipt). Kept durably and matched when the part appears.
orphan_reports = Table(
    "orphan_reports",
    metadata,
    Column("line", String(64), primary_key=True),
    Column("line_ref", String(80), primary_key=True),
    Column("status_code", Integer, nullable=False),
    Column("done_ms", BigInteger, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    # The line's hint (domain.queue.ReportHint), when it gave one: which message, lease and
    # part the report is for, so it can settle a message whose submit was never recorded.
    Column("hint_message_id", BigInteger, nullable=True),
    Column("hint_lease_seq", Integer, nullable=True),
    Column("hint_part", SmallInteger, nullable=True),
    Column("hint_parts", SmallInteger, nullable=True),
    Column("hint_port", Integer, nullable=True),
    Column("hint_covers", SmallInteger, nullable=True),
)
Index(
    "ix_orphan_reports_hint",
    orphan_reports.c.hint_message_id,
    sqlite_where=orphan_reports.c.hint_message_id.is_not(None),
    postgresql_where=orphan_reports.c.hint_message_id.is_not(None),
)

inbound = Table(
    "inbound",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", Integer, nullable=False),
    Column("line", String(64), nullable=False),
    Column("port", Integer, nullable=False),
    Column("sender", String(32), nullable=False),
    Column("recipient", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("smsc", String(32), nullable=False, server_default=""),
    Column("imsi", String(20), nullable=False, server_default=""),
    Column("parts", SmallInteger, nullable=False, server_default="1"),
    Column("received_ms", BigInteger, nullable=False),
    Column("read", Boolean, nullable=False, server_default=text("false")),
)
Index("ix_inbound_account_id", inbound.c.account_id, inbound.c.id)

# Incoming SMS in parts (TS 23.040 §9.2.3.24.1/.8, SMPP SAR) while they are reassembled: a
# line acknowledges a part once it is here, so a part that arrives after a restart joins
# those that came before it. One row per message being reassembled, its parts beside it.
# ``done_ms`` is set when the message was stored (whole, or what arrived by the line's
# reassembly timeout); the rows then stay for one more timeout, so a part the line is sent
# again (its acknowledgement was lost) is known as the same part (store/reassembly.py).
reassembly = Table(
    "reassembly",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("line", String(64), nullable=False),
    Column("port", Integer, nullable=False),
    Column("sender", String(32), nullable=False),
    Column("recipient", String(32), nullable=False),
    Column("ref", Integer, nullable=False),
    Column("total", SmallInteger, nullable=False),
    Column("smsc", String(64), nullable=False, server_default=""),
    Column("started_ms", BigInteger, nullable=False),
    Column("done_ms", BigInteger, nullable=True),
    UniqueConstraint(
        "line", "port", "sender", "recipient", "ref", "total", name="uq_reassembly_key"
    ),
    Index("ix_reassembly_due", "line", "done_ms", "started_ms"),
)

reassembly_parts = Table(
    "reassembly_parts",
    metadata,
    Column("group_id", Integer, ForeignKey("reassembly.id"), primary_key=True),
    Column("seq", SmallInteger, primary_key=True, autoincrement=False),
    Column("data_coding", SmallInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
)

# itniotech replay records (spec §7): an identical signed request seen again inside the
# timestamp window gets the first response back. Kept in the database so the rule holds
# across processes; `response` is NULL while the first request is still running.
itnio_replays = Table(
    "itnio_replays",
    metadata,
    Column("fingerprint", String(77), primary_key=True),
    Column("expires_ms", BigInteger, nullable=False),
    Column("response", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
)
Index("ix_itnio_replays_expires", itnio_replays.c.expires_ms)
