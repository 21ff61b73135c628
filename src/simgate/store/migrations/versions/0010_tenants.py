"""tenants: gateway users' role, the account that asked for a USSD reply

Revision ID: 0010_tenants
Revises: 0004_dinstar

Issue 14 item 1: ports, lines and USSD are the operator's. Every existing gateway user becomes
an ``account`` user (safety over compatibility: an upgrade must close the hole on instances
that already host several accounts); the operator promotes its own users with
``simgate users role NAME operator`` (README "Gateway users and ports"). USSD replies kept
before the upgrade have no account: only operators see them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_tenants"
down_revision = "0004_dinstar"  # dinstar_ussd; gateway_users is in the base
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The same objects as simgate/store/tables.py and store/dialects/dinstar_tables.py.
    with op.batch_alter_table("gateway_users") as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(16), nullable=False, server_default="account")
        )
    with op.batch_alter_table("dinstar_ussd") as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dinstar_ussd") as batch_op:
        batch_op.drop_column("account_id")
    with op.batch_alter_table("gateway_users") as batch_op:
        batch_op.drop_column("role")
