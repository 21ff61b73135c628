"""The accept statements: a request's messages queued, charged their price, in one batch.

What services/accept_writer.py writes for a batch of accepts (issue 15's group commit):
:func:`insert_many`, the rows alone (one driver ``executemany``, both backends; the charges
and the callers' records are written beside it in the batch's transaction); and on
PostgreSQL the one-statement accepts, where the charges, the rows and, for an itniotech
send, its replay record (spec §7) are one statement run in autocommit: :func:`insert_charged`
and :func:`insert_claimed`, their rows one jsonb parameter (store/jsonb_rows.py).

Apart from store/messages.py, whose rows these insert: that module is the queue the worker
reads (lease, submit results, refunds, queries); this one is only how rows come into it.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import BigInteger, Boolean, Integer, SmallInteger, String
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.messages import State
from simgate.domain.records import NewMessage
from simgate.store import driver_sql, jsonb_rows, unnest
from simgate.store.sqltext import positional_insert
from simgate.store.tables import accounts, itnio_replays, messages

__all__ = ["ReplayRecord", "insert_charged", "insert_claimed", "insert_many"]

# Every NewMessage field but the encoding, read in one call per row; the encoding goes in as a
# plain int (sqlite3 binds an IntEnum through its adapter lookup, about a microsecond a row).
_PLAIN_FIELDS = tuple(f.name for f in fields(NewMessage) if f.name != "encoding")
_plain_values = operator.attrgetter(*_PLAIN_FIELDS)


_INSERT_COLUMNS = (
    *_PLAIN_FIELDS,
    "encoding",
    "state",
    "attempts",
    "next_attempt_ms",
    "charge_micros",
    "accepted_ms",
    "queued_ms",
    "updated_ms",
)


def _pg_type(name: str) -> str:
    """The column's PostgreSQL type in a jsonb row (store/jsonb_rows.py); text for a
    VARCHAR(n): an explicit cast to VARCHAR(n) cuts a longer value short, where the INSERT's
    own assignment to the column refuses it, as the row-wise insert does."""
    typ = messages.c[name].type
    for kind, pg in ((BigInteger, "bigint"), (SmallInteger, "smallint"), (Integer, "integer")):
        if isinstance(typ, kind):
            return pg
    if isinstance(typ, Boolean):
        return "boolean"
    assert isinstance(typ, String), (name, typ)
    return "text"


# insert_charged's row columns: the payer of each row, then the insert's.
_CHARGED_INSERT_COLUMNS: tuple[jsonb_rows.Col, ...] = (
    ("payer", "bigint"),
    *((name, _pg_type(name)) for name in _INSERT_COLUMNS),
)


def _charged_insert_sql() -> str:
    """insert_charged's statement: parameters the account ids and amounts (arrays), then
    the rows of _CHARGED_INSERT_COLUMNS as one jsonb array (store/jsonb_rows.py). Charged
    as AccountRepo.charge does (the gift first, then the balance, if balance + gift +
    credit cover it; the SET expressions read the row from before the update, and a row
    locked by another charge is re-checked once it is free, READ COMMITTED's rule for
    UPDATE); a data-modifying CTE's RETURNING is the only way its sibling sees what it
    changed, so the INSERT reads ``charged``."""
    source = jsonb_rows.source(_CHARGED_INSERT_COLUMNS, 3)
    columns = ", ".join(_INSERT_COLUMNS)
    return (
        f"WITH charged AS (UPDATE {accounts.name} AS a SET "
        "gift_micros = greatest(a.gift_micros - c.amount, 0), "
        "balance_micros = a.balance_micros - (c.amount - least(a.gift_micros, c.amount)) "
        "FROM unnest($1::bigint[], $2::bigint[]) AS c(id, amount) "
        "WHERE a.id = c.id AND a.balance_micros + a.gift_micros + a.credit_micros >= c.amount "
        "RETURNING a.id), "
        f"inserted AS (INSERT INTO {messages.name} ({columns}) "
        f"SELECT {', '.join('v.' + c for c in _INSERT_COLUMNS)} FROM {source} AS v "
        "WHERE v.payer IS NULL OR v.payer IN (SELECT charged.id FROM charged)) "
        "SELECT charged.id FROM charged"
    )


_CHARGED_INSERT_SQL = _charged_insert_sql()


# insert_claimed's rows: one per request (``n``, its position, is the arrays' ordinality, not
# an array of its own: issue 15, one array fewer to encode per accept batch), then one per
# message (``job``: its request's ``n``).
_CLAIMED_JOB_COLUMNS: tuple[unnest.Col, ...] = (
    ("payer", "bigint"),
    ("amount", "bigint"),
    ("fp", "text"),
    ("expires", "bigint"),
    ("response", "text"),
    ("created", "bigint"),
)
_CLAIMED_ROW_COLUMNS: tuple[jsonb_rows.Col, ...] = (
    ("job", "integer"),
    *((name, _pg_type(name)) for name in _INSERT_COLUMNS),
)

# A replay record written with its request's rows: (fingerprint, expires_ms, response,
# created_ms), as store/dialects/itnio.py claim_answered writes it.
ReplayRecord = tuple[str, int, str, int]


def _claimed_insert_sql() -> str:
    """insert_claimed's statement: the arrays of _CLAIMED_JOB_COLUMNS, then the rows of
    _CLAIMED_ROW_COLUMNS as one jsonb array (store/jsonb_rows.py); returns ``(0, account
    id)`` per account charged and ``(1, fingerprint)`` per record written.

    The requests stay arrays: the planner sizes ``unnest`` of a bound array by its length,
    but any ``jsonb_array_elements`` at 100 rows, and from ``job`` it plans the accounts'
    CTEs (with the requests as jsonb, ``charged`` became a hash join over a sequential scan
    of ``accounts``, where it is index look-ups). The messages feed only the INSERT.

    ``payable`` locks (FOR UPDATE, in account id order: concurrent batches wait for each
    other in one order) the accounts whose balance + gift + credit covers every request of
    theirs in the batch, repeats or not; only their requests' records are written
    (``claimed``, ON CONFLICT DO NOTHING: a fingerprint recorded already is a repeat, in
    fingerprint order as _insert_records writes them). ``charged`` then takes from those
    locked rows the sum of the requests whose record was written or that have none (at
    most what ``payable`` checked, on rows nobody else can change meanwhile: it cannot
    fail), as AccountRepo.charge does; ``inserted`` writes their rows. So no record is
    written without its charge and rows, and no charge without them: one statement, all
    or nothing. A sibling of a data-modifying CTE sees its work only through its
    RETURNING, hence the chain.

    The account is locked before the records are written, where the transactional batch
    (services/accept_writer.py) writes its records first: should two processes take the
    same fingerprint at once, one through each, PostgreSQL finds the deadlock and the
    database writer runs the loser again (store/database.py); an identical request sent
    twice at the same instant is the only way there."""
    jobs, _ = unnest.arrays(_CLAIMED_JOB_COLUMNS, [], 1)
    job_names = ", ".join(name for name, _ in _CLAIMED_JOB_COLUMNS)
    picks = ", ".join(f"j.{name}" for name, _ in _CLAIMED_JOB_COLUMNS)
    rows = jsonb_rows.source(_CLAIMED_ROW_COLUMNS, 1 + len(_CLAIMED_JOB_COLUMNS))
    columns = ", ".join(_INSERT_COLUMNS)
    spendable = "a.balance_micros + a.gift_micros + a.credit_micros"
    return (
        f"WITH job AS MATERIALIZED (SELECT (j.o - 1)::integer AS n, {picks} "
        f"FROM {jobs} WITH ORDINALITY AS j({job_names}, o)), "
        f"payable AS MATERIALIZED (SELECT a.id FROM {accounts.name} AS a "
        "WHERE a.id IN (SELECT job.payer FROM job) "
        f"AND {spendable} >= (SELECT sum(job.amount) FROM job WHERE job.payer = a.id) "
        "ORDER BY a.id FOR UPDATE OF a), "
        f"claimed AS (INSERT INTO {itnio_replays.name} "
        "(fingerprint, expires_ms, response, created_ms) "
        "SELECT job.fp, job.expires, job.response, job.created FROM job "
        "WHERE job.fp IS NOT NULL "
        "AND (job.payer IS NULL OR job.payer IN (SELECT payable.id FROM payable)) "
        "ORDER BY job.fp ON CONFLICT (fingerprint) DO NOTHING RETURNING fingerprint), "
        "paid AS MATERIALIZED (SELECT job.n, job.payer, job.amount FROM job "
        "WHERE (job.fp IS NULL OR job.fp IN (SELECT claimed.fingerprint FROM claimed)) "
        "AND (job.payer IS NULL OR job.payer IN (SELECT payable.id FROM payable))), "
        f"charged AS (UPDATE {accounts.name} AS a SET "
        "gift_micros = greatest(a.gift_micros - c.amount, 0), "
        "balance_micros = a.balance_micros - (c.amount - least(a.gift_micros, c.amount)) "
        "FROM (SELECT paid.payer, sum(paid.amount) FROM paid WHERE paid.payer IS NOT NULL "
        "GROUP BY paid.payer) AS c(id, amount) "
        f"WHERE a.id = c.id AND {spendable} >= c.amount RETURNING a.id), "
        f"inserted AS (INSERT INTO {messages.name} ({columns}) "
        f"SELECT {', '.join('v.' + c for c in _INSERT_COLUMNS)} FROM {rows} AS v "
        "WHERE v.job IN (SELECT paid.n FROM paid "
        "WHERE paid.payer IS NULL OR paid.payer IN (SELECT charged.id FROM charged))) "
        "SELECT 0, charged.id::text FROM charged "
        "UNION ALL SELECT 1, claimed.fingerprint FROM claimed"
    )


_CLAIMED_INSERT_SQL = _claimed_insert_sql()
_JOB_ORDER = ("payer", "amount", "fp", "expires", "response", "created")
# A request without a replay record: NULL in its record's four columns.
_NO_RECORD: tuple[None, None, None, None] = (None, None, None, None)
assert tuple(name for name, _ in _CLAIMED_JOB_COLUMNS) == _JOB_ORDER


_QUEUED = int(State.QUEUED)


def _insert_values(m: NewMessage, now_ms: int) -> tuple[Any, ...]:
    """One row of _INSERT_COLUMNS for a new message queued at ``now_ms``."""
    return (
        *_plain_values(m),
        int(m.encoding),
        _QUEUED,
        0,
        now_ms,
        m.price_micros * m.parts,
        now_ms,
        now_ms,
        now_ms,
    )


async def insert_many(
    conn: AsyncConnection, groups: Sequence[tuple[Sequence[NewMessage], int]]
) -> None:
    """Insert accepted messages QUEUED, charged their price per part, for the requests of
    one accept batch, each ``(rows, now_ms)``: one driver ``executemany`` for all of them
    (services/accept_writer.py)."""
    # Tuples straight to the driver's executemany: building and processing a dict of
    # 24 bind values per row through Core tripled the cost of the insert (bench/).
    params = [_insert_values(m, now_ms) for rows, now_ms in groups for m in rows]
    # Straight on SQLite's write connection (store/driver_sql.py): once per accept batch,
    # where SQLAlchemy's execution path cost ~50 µs of loop CPU.
    await driver_sql.run_many(
        conn, positional_insert(conn.dialect, messages.name, _INSERT_COLUMNS), params
    )


async def insert_charged(
    conn: AsyncConnection,
    charges: Sequence[tuple[int, int]],
    groups: Sequence[tuple[Sequence[NewMessage], int, int | None]],
) -> set[int]:
    """PostgreSQL: an accept batch in one statement (issue 15). Charges each ``(account
    id, amount)`` of ``charges`` (account ids unique) as :meth:`AccountRepo.charge` does,
    if its balance covers it, and inserts :func:`insert_many`'s rows of each ``(rows,
    now_ms, payer)`` of ``groups`` whose ``payer`` is None or an account charged now.
    Returns the ids of the accounts charged.

    One statement, not BEGIN, a charge per account, the INSERT and COMMIT: on PostgreSQL
    an accept's cost is its round trips to the server, and run in autocommit
    (Database.submit) this is the only one; in a transaction (the accept batches with
    records of their own) it is one of few. Rows go in as one jsonb parameter
    (store/jsonb_rows.py): one plan and one Bind for the whole batch."""
    rows = [(payer, *_insert_values(m, now_ms)) for group, now_ms, payer in groups for m in group]
    ids = [account_id for account_id, _ in charges]
    amounts = [amount for _, amount in charges]
    result = await driver_sql.fetch(
        conn, _CHARGED_INSERT_SQL, (ids, amounts, jsonb_rows.encode(rows))
    )
    return {int(row[0]) for row in result}


async def insert_claimed(
    conn: AsyncConnection,
    groups: Sequence[tuple[Sequence[NewMessage], int, int | None, int, ReplayRecord | None]],
) -> tuple[set[int], set[str]]:
    """PostgreSQL: :func:`insert_charged` for requests that may carry a replay record
    (the itniotech replay rule, spec §7; store/dialects/itnio.py), in one statement
    (:func:`_claimed_insert_sql`). Each ``(rows, now_ms, payer, amount, record)`` of
    ``groups`` (fingerprints unique, ``payer`` None when nothing is charged) goes on
    when its payer's balance covers every request of that payer here and its record,
    if any, is new: its record is written, ``amount`` charged (one sum per payer) and
    its rows inserted. Returns the payers charged and the fingerprints written; every
    other request changed nothing (a repeat, or a payer short of the sum)."""
    # The arrays of _CLAIMED_JOB_COLUMNS built column by column (no row tuples to zip), in
    # their order (_JOB_ORDER).
    payers: list[int | None] = []
    amounts: list[int] = []
    fps: list[str | None] = []
    expires: list[int | None] = []
    responses: list[str | None] = []
    created: list[int | None] = []
    row_values: list[tuple[Any, ...]] = []
    for n, (group, now_ms, payer, amount, record) in enumerate(groups):
        fp, expires_ms, response, created_ms = record or _NO_RECORD
        payers.append(payer)
        amounts.append(amount)
        fps.append(fp)
        expires.append(expires_ms)
        responses.append(response)
        created.append(created_ms)
        row_values.extend((n, *_insert_values(m, now_ms)) for m in group)
    result = await driver_sql.fetch(
        conn,
        _CLAIMED_INSERT_SQL,
        (payers, amounts, fps, expires, responses, created, jsonb_rows.encode(row_values)),
    )
    charged: set[int] = set()
    claimed: set[str] = set()
    for kind, value in map(tuple, result):
        if kind == 0:
            charged.add(int(value))
        else:
            claimed.add(str(value))
    return charged, claimed
