"""push owners: pushes' account, their attempts and subjects; calls by number

Revision ID: 0014_push_owners
Revises: 0013_console, 0002_push, 0007_ledger

Issue 19 (web console, second pass):

- ``pushes.account_id``: the account a push reports to, so an account's console user sees
  and retries its own pushes. Backfilled from the record its order key names (``msg:<id>``:
  a message, or an incoming SMS for itniotech's MO push; ``inbound:<id>``; ``call:<id>``).
  Pushes under a shared key (Dinstar's ``dinstar:*``) stay the operator's.
- ``push_attempts``: every attempt's time, outcome, status and error.
- ``push_subjects``: the records a push reports on (backfilled from the same keys).
- ``ix_calls_account_callee``: the console's search of calls by number.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_push_owners"
# It joins the areas it reads: pushes (0002_push) and calls (the voice branch, 0007_ledger);
# messages and inbound are in the base.
down_revision = ("0013_console", "0002_push", "0007_ledger")
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# (order key prefix, the tables the id after it may name, in the order tried)
_KEYS = (("msg:", ("messages", "inbound")), ("inbound:", ("inbound",)), ("call:", ("calls",)))


def _an_id(expr: str) -> str:
    """SQL true when ``expr`` is digits that fit a BIGINT (ids have 19, domain/ids.py); a
    cast of anything else fails on PostgreSQL. Digit strings of one length compare as
    numbers do."""
    if op.get_bind().dialect.name == "postgresql":
        digits = f"{expr} ~ '^[0-9]{{1,19}}$'"
    else:
        digits = f"{expr} <> '' AND {expr} NOT GLOB '*[^0-9]*' AND length({expr}) <= 19"
    return f"({digits} AND (length({expr}) < 19 OR {expr} <= '{2**63 - 1}'))"


def upgrade() -> None:
    # The same objects as simgate/store/push_tables.py and voice_tables.py.
    op.add_column("pushes", sa.Column("account_id", sa.Integer(), nullable=True))
    op.create_index("ix_pushes_account", "pushes", ["account_id", "id"])
    op.create_table(
        "push_attempts",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("push_id", sa.BigInteger(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(255), nullable=True),
    )
    op.create_index("ix_push_attempts_push", "push_attempts", ["push_id", "id"])
    op.create_table(
        "push_subjects",
        sa.Column("record_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("push_id", sa.BigInteger(), primary_key=True, autoincrement=False),
    )
    op.create_index("ix_calls_account_callee", "calls", ["account_id", "callee", "id"])
    _backfill()


def _backfill() -> None:
    for prefix, tables in _KEYS:
        start = len(prefix) + 1
        tail = f"substr(order_key, {start})"
        keyed = f"order_key LIKE '{prefix}%' AND {_an_id(tail)}"
        record = f"CAST({tail} AS BIGINT)"
        for table in tables:
            op.execute(
                f"UPDATE pushes SET account_id = (SELECT t.account_id FROM {table} t "
                f"WHERE t.id = {record}) WHERE account_id IS NULL AND {keyed}"
            )
        if prefix != "call:":  # the console lists pushes on message and SMS pages
            op.execute(
                f"INSERT INTO push_subjects (record_id, push_id) "
                f"SELECT {record}, id FROM pushes WHERE {keyed}"
            )


def downgrade() -> None:
    op.drop_index("ix_calls_account_callee", table_name="calls")
    op.drop_table("push_subjects")
    op.drop_index("ix_push_attempts_push", table_name="push_attempts")
    op.drop_table("push_attempts")
    op.drop_index("ix_pushes_account", table_name="pushes")
    op.drop_column("pushes", "account_id")
