"""dinstar gateway: incoming_sms_id numbers, USSD replies, number index

Revision ID: 0004_dinstar
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_dinstar"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dinstar_inbound",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("inbound_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("inbound_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "dinstar_ussd",
        sa.Column("line", sa.String(length=64), nullable=False),
        sa.Column("port", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("line", "port"),
    )
    op.create_index(
        "ix_messages_recipient", "messages", ["account_id", "recipient", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_messages_recipient", table_name="messages")
    op.drop_table("dinstar_ussd")
    op.drop_table("dinstar_inbound")
