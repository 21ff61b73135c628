"""Voice tables (issue #8, spec §1.11-§1.16), on the shared ``metadata``; migration 0006_voice.

- ``voice_audio``: decoded audio (8 kHz s16le mono PCM), content-addressed by its SHA-256, so
  one audio used by many files (or many identical TTS texts) is stored once.
- ``voice_files``: an account's uploaded files (fileUpload / fileQuery, §1.13); ``file_name``
  is unique per account (-20 "name exists").
- ``fx_rates``: units of a currency per 1 USD (x 1e6), for the non-USD quote fields of a
  record (``quoteExchange``, ``settleRate``, ``settlePay``, §1.14).
- ``calls``: one row per callee of a sendCode / sendGroup (the queue and the record at once).
- ``call_hours``: DONE calls per account and UTC hour of their voiceId, kept in the same
  transaction as a call becomes DONE; ``recordGroupQuery`` (§1.15) counts and pages a 31-day
  window from it instead of scanning every record of the window.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from simgate.store.tables import metadata

# SQLite only auto-increments an INTEGER PRIMARY KEY (a BIGINT one would need explicit ids).
_AUTO_ID = BigInteger().with_variant(Integer, "sqlite")

voice_audio = Table(
    "voice_audio",
    metadata,
    Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("pcm", LargeBinary, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

voice_files = Table(
    "voice_files",
    metadata,
    Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    Column("account_id", Integer, nullable=False),
    Column("file_id", String(64), nullable=False, unique=True),
    Column("file_name", String(64), nullable=False),
    Column("format", String(8), nullable=False),
    Column("audio_id", BigInteger, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("account_id", "file_name", name="uq_voice_files_account_name"),
)

fx_rates = Table(
    "fx_rates",
    metadata,
    Column("currency", String(3), primary_key=True),
    Column("per_usd_micros", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

calls = Table(
    "calls",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),  # voiceId
    Column("account_id", Integer, nullable=False),
    Column("app_id", Integer, nullable=False),
    Column("kind", SmallInteger, nullable=False),
    Column("state", SmallInteger, nullable=False),
    Column("callee", String(32), nullable=False),
    Column("display_num", String(32), nullable=False),
    Column("area", String(128), nullable=False),
    Column("audio_id", BigInteger, nullable=False),
    Column("file_id", String(64), nullable=False),
    Column("loop_count", SmallInteger, nullable=False),
    Column("called_info", Text, nullable=False),
    Column("max_duration_s", Integer, nullable=True),
    Column("max_ringing_s", Integer, nullable=False),
    Column("recall_count", SmallInteger, nullable=False),
    Column("recall_interval_s", Integer, nullable=False),
    Column("recalls_done", SmallInteger, nullable=False),
    Column("line", String(64), nullable=True),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until_ms", BigInteger, nullable=True),
    Column("submit_ms", BigInteger, nullable=False),
    Column("call_ms", BigInteger, nullable=True),
    Column("ringing_ms", BigInteger, nullable=True),
    Column("answer_ms", BigInteger, nullable=True),
    Column("hangup_ms", BigInteger, nullable=True),
    Column("call_duration_s", Integer, nullable=False),
    Column("charged_duration_s", Integer, nullable=False),
    Column("sip_code", Integer, nullable=True),
    Column("reason", String(255), nullable=True),
    Column("dtmf", String(32), nullable=False, server_default=""),
    Column("bill_period", String(16), nullable=False),
    Column("rate_micros", BigInteger, nullable=False),
    Column("base_cost_micros", BigInteger, nullable=False),
    Column("cost_micros", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("quote_exchange_micros", BigInteger, nullable=True),
    Column("settle_rate_micros", BigInteger, nullable=True),
    Column("settle_pay_micros", BigInteger, nullable=True),
    Column("updated_ms", BigInteger, nullable=False),
)
# The queue: due QUEUED rows by time; the reaper: CALLING rows (few, bounded by line capacity).
Index("ix_calls_due", calls.c.state, calls.c.next_attempt_ms)
# recordGroupQuery: an account's DONE calls in a (time-ordered) voiceId range.
Index("ix_calls_account_state", calls.c.account_id, calls.c.state, calls.c.id)
# The console's search by number (migration 0014): one account's calls to a callee, newest
# first, without reading the account's other calls.
Index("ix_calls_account_callee", calls.c.account_id, calls.c.callee, calls.c.id)

call_hours = Table(
    "call_hours",
    metadata,
    Column("account_id", Integer, primary_key=True, autoincrement=False),
    Column("hour", Integer, primary_key=True, autoincrement=False),  # epoch ms // 3 600 000
    Column("n", BigInteger, nullable=False),
)
