"""itniotech replay key: the request's Timestamp before its digest

Revision ID: 0016_itnio_replay_key
Revises: 0003_itnio

Issue 15: a replay record's key was the request's sha256 alone (64 hex digits), random, so
every record went into a random page of the key's index and each commit wrote as many index
pages as it had records (raw SQLite, 40,000 records, 8 per commit: ~14 us of CPU per record
against ~5 with keys in time order). Records are now keyed by the request's Timestamp in
milliseconds (13 digits) followed by that digest (api/dialects/itnio/replay.py
``replay_key``): a replay carries the same Timestamp (it is part of what the Sign covers), so
it finds the same key, and new keys land at the end of the index.

The column grows to 77 characters (PostgreSQL checks VARCHAR lengths; SQLite does not, and
its table is left as it is). Records written before keep their 64-digit keys and still
answer their replays until they expire: while any is alive, a request also looks up its old
key (ReplayGuard, store/dialects/itnio.py ``legacy_until``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_itnio_replay_key"
down_revision = "0003_itnio"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "itnio_replays",
            "fingerprint",
            type_=sa.String(length=77),
            existing_type=sa.String(length=64),
            existing_nullable=False,
        )


def downgrade() -> None:
    # The release before reads only 64-digit keys: the newer records would serve no replay.
    op.execute(sa.text("DELETE FROM itnio_replays WHERE length(fingerprint) <> 64"))
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "itnio_replays",
            "fingerprint",
            type_=sa.String(length=64),
            existing_type=sa.String(length=77),
            existing_nullable=False,
        )
