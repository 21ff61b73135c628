"""reassembly: incoming SMS parts kept durably; one SMSC id on every payload-mode part

Revision ID: 0008_reassembly
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_reassembly"
down_revision = "0001"  # its own tables, and message_parts (core)
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The same objects as simgate/store/tables.py's reassembly and reassembly_parts.
    op.create_table(
        "reassembly",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("line", sa.String(length=64), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=32), nullable=False),
        sa.Column("ref", sa.Integer(), nullable=False),
        sa.Column("total", sa.SmallInteger(), nullable=False),
        sa.Column("smsc", sa.String(length=64), server_default="", nullable=False),
        sa.Column("started_ms", sa.BigInteger(), nullable=False),
        sa.Column("done_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "line", "port", "sender", "recipient", "ref", "total", name="uq_reassembly_key"
        ),
    )
    op.create_index("ix_reassembly_due", "reassembly", ["line", "done_ms", "started_ms"])
    op.create_table(
        "reassembly_parts",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("data_coding", sa.SmallInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["reassembly.id"]),
        sa.PrimaryKeyConstraint("group_id", "seq"),
    )
    # Payload mode stored a long message's later parts as "id#2", "id#3".., which only the
    # line's memory tied to "id". Every part now carries "id" (lines/smpp/receipts.py), so a
    # receipt settles them all from the store: parts still waiting for theirs get it too.
    op.execute(
        sa.text(
            "UPDATE message_parts SET line_ref = ("
            " SELECT f.line_ref FROM message_parts f"
            " WHERE f.message_id = message_parts.message_id AND f.seq = 0)"
            " WHERE status_code IS NULL AND seq > 0 AND line_ref = ("
            " SELECT f.line_ref || '#' || CAST(message_parts.seq + 1 AS VARCHAR(8))"
            " FROM message_parts f"
            " WHERE f.message_id = message_parts.message_id AND f.seq = 0)"
        )
    )


def downgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE message_parts SET line_ref ="
            " line_ref || '#' || CAST(seq + 1 AS VARCHAR(8))"
            " WHERE status_code IS NULL AND seq > 0 AND line_ref = ("
            " SELECT f.line_ref FROM message_parts f"
            " WHERE f.message_id = message_parts.message_id AND f.seq = 0)"
        )
    )
    op.drop_table("reassembly_parts")
    op.drop_index("ix_reassembly_due", table_name="reassembly")
    op.drop_table("reassembly")
