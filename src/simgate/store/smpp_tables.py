"""Tables of the SMPP server (issue 18): SMPP accounts, live binds, the receipt outbox.

The outbox holds one row per deliver_sm owed to an account (a delivery receipt or an
incoming SMS), encoded once when the event commits; a row leaves only when an ESME answered
its deliver_sm (at-least-once), or at its validity.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, LargeBinary, String, Table

from simgate.store.tables import metadata

smpp_users = Table(
    "smpp_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("system_id", String(16), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("allow_cidrs", String(2000), nullable=False),  # comma list; "" = anywhere
    Column("max_binds", Integer, nullable=False),
    Column("tps", Integer, nullable=False),  # submit_sm per second across binds; 0 = no cap
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_smpp_users_account", "account_id"),
)

# Binds open now, per process (node): what `simgate smpp-users list` shows from any process.
smpp_binds = Table(
    "smpp_binds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("node", String(64), nullable=False),
    Column("system_id", String(16), nullable=False),
    Column("bind_type", String(4), nullable=False),  # tx | rx | trx
    Column("peer", String(64), nullable=False),
    Column("bound_ms", BigInteger, nullable=False),
    Index("ix_smpp_binds_node", "node"),
)

smpp_outbox = Table(
    "smpp_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(8), nullable=False),  # receipt | inbound
    Column("pdu", LargeBinary, nullable=False),  # the encoded deliver_sm (sequence 0)
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Index("ix_smpp_outbox_account", "account_id", "id"),
)
