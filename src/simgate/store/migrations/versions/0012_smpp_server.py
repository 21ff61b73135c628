"""smpp server: SMPP accounts, live binds, the per-account deliver_sm outbox (issue 18)

Revision ID: 0012_smpp_server
Revises: 0010_tenants
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_smpp_server"
down_revision = "0011_port_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The same objects as simgate/store/smpp_tables.py.
    op.create_table(
        "smpp_users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("system_id", sa.String(16), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("allow_cidrs", sa.String(2000), nullable=False),
        sa.Column("max_binds", sa.Integer(), nullable=False),
        sa.Column("tps", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_smpp_users_account", "smpp_users", ["account_id"])
    op.create_table(
        "smpp_binds",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("system_id", sa.String(16), nullable=False),
        sa.Column("bind_type", sa.String(4), nullable=False),
        sa.Column("peer", sa.String(64), nullable=False),
        sa.Column("bound_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_smpp_binds_node", "smpp_binds", ["node"])
    op.create_table(
        "smpp_outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("pdu", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_smpp_outbox_account", "smpp_outbox", ["account_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_smpp_outbox_account", "smpp_outbox")
    op.drop_table("smpp_outbox")
    op.drop_index("ix_smpp_binds_node", "smpp_binds")
    op.drop_table("smpp_binds")
    op.drop_index("ix_smpp_users_account", "smpp_users")
    op.drop_table("smpp_users")
