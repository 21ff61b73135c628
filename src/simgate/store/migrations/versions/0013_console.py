"""console: console users and their sessions

Revision ID: 0013_console
Revises: 0010_tenants

Issue 19: the web console logs in its own users, with server-side sessions, so logout and a
deleted user end a session at once in every process.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_console"
down_revision = "0012_smpp_server"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The same objects as simgate/store/console_users.py.
    op.create_table(
        "console_users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("console_users.id"), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_console_sessions_user", "console_sessions", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_console_sessions_user", table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("console_users")
