"""voice: calls, call_hours, voice_files, voice_audio, fx_rates

Revision ID: 0006_voice
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_voice"
down_revision = "0001"
branch_labels = None
depends_on = None

# The same objects as simgate/store/voice_tables.py.
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "voice_audio",
        sa.Column("id", _AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("pcm", sa.LargeBinary(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256"),
    )
    op.create_table(
        "voice_files",
        sa.Column("id", _AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("audio_id", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("file_id"),
        sa.UniqueConstraint("account_id", "file_name", name="uq_voice_files_account_name"),
    )
    op.create_table(
        "fx_rates",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("per_usd_micros", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("currency"),
    )
    op.create_table(
        "calls",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        sa.Column("callee", sa.String(length=32), nullable=False),
        sa.Column("display_num", sa.String(length=32), nullable=False),
        sa.Column("area", sa.String(length=128), nullable=False),
        sa.Column("audio_id", sa.BigInteger(), nullable=False),
        sa.Column("file_id", sa.String(length=64), nullable=False),
        sa.Column("loop_count", sa.SmallInteger(), nullable=False),
        sa.Column("called_info", sa.Text(), nullable=False),
        sa.Column("max_duration_s", sa.Integer(), nullable=True),
        sa.Column("max_ringing_s", sa.Integer(), nullable=False),
        sa.Column("recall_count", sa.SmallInteger(), nullable=False),
        sa.Column("recall_interval_s", sa.Integer(), nullable=False),
        sa.Column("recalls_done", sa.SmallInteger(), nullable=False),
        sa.Column("line", sa.String(length=64), nullable=True),
        sa.Column("next_attempt_ms", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("submit_ms", sa.BigInteger(), nullable=False),
        sa.Column("call_ms", sa.BigInteger(), nullable=True),
        sa.Column("ringing_ms", sa.BigInteger(), nullable=True),
        sa.Column("answer_ms", sa.BigInteger(), nullable=True),
        sa.Column("hangup_ms", sa.BigInteger(), nullable=True),
        sa.Column("call_duration_s", sa.Integer(), nullable=False),
        sa.Column("charged_duration_s", sa.Integer(), nullable=False),
        sa.Column("sip_code", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("dtmf", sa.String(length=32), server_default="", nullable=False),
        sa.Column("bill_period", sa.String(length=16), nullable=False),
        sa.Column("rate_micros", sa.BigInteger(), nullable=False),
        sa.Column("base_cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("quote_exchange_micros", sa.BigInteger(), nullable=True),
        sa.Column("settle_rate_micros", sa.BigInteger(), nullable=True),
        sa.Column("settle_pay_micros", sa.BigInteger(), nullable=True),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_calls_due", "calls", ["state", "next_attempt_ms"])
    op.create_index("ix_calls_account_state", "calls", ["account_id", "state", "id"])
    op.create_table(
        "call_hours",
        sa.Column("account_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hour", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "hour"),
    )


def downgrade() -> None:
    op.drop_table("call_hours")
    op.drop_index("ix_calls_account_state", table_name="calls")
    op.drop_index("ix_calls_due", table_name="calls")
    op.drop_table("calls")
    op.drop_table("fx_rates")
    op.drop_table("voice_files")
    op.drop_table("voice_audio")
