"""itniotech replay records

Revision ID: 0003_itnio
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_itnio"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "itnio_replays",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint"),
    )
    op.create_index("ix_itnio_replays_expires", "itnio_replays", ["expires_ms"])


def downgrade() -> None:
    op.drop_index("ix_itnio_replays_expires", table_name="itnio_replays")
    op.drop_table("itnio_replays")
