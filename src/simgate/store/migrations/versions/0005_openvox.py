"""openvox inbox filter

Revision ID: 0005_openvox
Revises: 0001
Create Date: 2026-11-22 03:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0005_openvox"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The same object as simgate/store/dialects/openvox.py.
    op.create_index("ix_inbound_sender", "inbound", ["account_id", "sender", "id"])


def downgrade() -> None:
    op.drop_index("ix_inbound_sender", table_name="inbound")
