"""late reports: messages.lease_seq and the line's hint on orphan reports

Revision ID: 0009_late_reports
Revises: 0001

A delivery report whose submit was never recorded (the process died between the line's answer
and the commit) carries the line's hint (message, lease, part) and settles the message once it
is UNKNOWN (README "Crash safety").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_late_reports"
down_revision = "0001"  # its own branch off the base: it reads no other area
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The same objects as simgate/store/tables.py.
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(
            sa.Column("lease_seq", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("orphan_reports") as batch_op:
        batch_op.add_column(sa.Column("hint_message_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("hint_lease_seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("hint_part", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("hint_parts", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("hint_port", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("hint_covers", sa.SmallInteger(), nullable=True))
        batch_op.create_index(
            "ix_orphan_reports_hint",
            ["hint_message_id"],
            unique=False,
            sqlite_where=sa.text("hint_message_id IS NOT NULL"),
            postgresql_where=sa.text("hint_message_id IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("orphan_reports") as batch_op:
        batch_op.drop_index("ix_orphan_reports_hint")
        for column in (
            "hint_covers",
            "hint_port",
            "hint_parts",
            "hint_part",
            "hint_lease_seq",
            "hint_message_id",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("lease_seq")
