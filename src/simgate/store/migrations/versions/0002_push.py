"""push outbox

Revision ID: 0002_push
Revises: 0001
Create Date: 2026-11-22 03:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_push"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The same objects as simgate/store/push_tables.py.
    op.create_table(
        "pushes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("uid", sa.String(length=40), nullable=False),
        sa.Column("endpoint", sa.String(length=300), nullable=False),
        sa.Column("order_key", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=64), server_default="", nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("headers_json", sa.Text(), server_default="{}", nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("signing_secret", sa.Text(), nullable=True),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("since_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("done_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uid"),
    )
    with op.batch_alter_table("pushes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pushes_due",
            ["next_attempt_ms", "id"],
            unique=False,
            sqlite_where=sa.text("state = 0"),
            postgresql_where=sa.text("state = 0"),
        )
        batch_op.create_index(
            "ix_pushes_order",
            ["endpoint", "order_key", "id"],
            unique=False,
            sqlite_where=sa.text("state = 0"),
            postgresql_where=sa.text("state = 0"),
        )
        batch_op.create_index(
            "ix_pushes_dead",
            ["id"],
            unique=False,
            sqlite_where=sa.text("state = 3"),
            postgresql_where=sa.text("state = 3"),
        )


def downgrade() -> None:
    with op.batch_alter_table("pushes", schema=None) as batch_op:
        batch_op.drop_index("ix_pushes_dead")
        batch_op.drop_index("ix_pushes_order")
        batch_op.drop_index("ix_pushes_due")
    op.drop_table("pushes")
