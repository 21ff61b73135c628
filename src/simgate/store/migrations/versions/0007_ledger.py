"""ledger: account_ledger, the operator movements of each account's money

Revision ID: 0007_ledger
Revises: 0006_voice
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_ledger"
down_revision = "0006_voice"  # the opening rows read calls
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The same object as simgate/store/tables.py's account_ledger.
    op.create_table(
        "account_ledger",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("balance_after_micros", sa.BigInteger(), nullable=False),
        sa.Column("gift_after_micros", sa.BigInteger(), nullable=False),
        sa.Column("made_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_account_ledger_account", "account_ledger", ["account_id", "id"])
    # Accounts from before the ledger: one opening row each, of what they hold plus what their
    # messages and calls took, so "ledger + charges + debits" rebuilds them as well.
    op.execute(
        sa.text(
            "INSERT INTO account_ledger (account_id, at_ms, kind, amount_micros,"
            " balance_after_micros, gift_after_micros, made_by, reason)"
            " SELECT a.id, a.created_ms, 'opening',"
            " a.balance_micros + a.gift_micros"
            " + COALESCE((SELECT SUM(m.charge_micros) FROM messages m"
            " WHERE m.account_id = a.id), 0)"
            " + COALESCE((SELECT SUM(COALESCE(c.settle_pay_micros, c.cost_micros)) FROM calls c"
            " WHERE c.account_id = a.id), 0),"
            " a.balance_micros, a.gift_micros, 'migration', 'balance before the ledger'"
            " FROM accounts a"
        )
    )


def downgrade() -> None:
    op.drop_index("ix_account_ledger_account", table_name="account_ledger")
    op.drop_table("account_ledger")
