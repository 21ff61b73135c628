"""modem port state: each port's last known state, for processes that do not drive it (issue 16)

Revision ID: 0011_port_state
Revises: 0010_tenants
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_port_state"
down_revision = "0010_tenants"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The same table as simgate/store/port_state.py.
    op.create_table(
        "modem_port_state",
        sa.Column("line", sa.String(64), primary_key=True),
        sa.Column("port", sa.Integer(), primary_key=True),
        sa.Column("reg", sa.String(24), nullable=False),
        sa.Column("signal", sa.Integer(), nullable=False),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("imsi", sa.String(20), nullable=False),
        sa.Column("iccid", sa.String(24), nullable=False),
        sa.Column("imei", sa.String(20), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("blocked_until_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("modem_port_state")
