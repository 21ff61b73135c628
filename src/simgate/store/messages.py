"""Outbound messages: rows of the lease-based queue, submit results, refunds, queries.

The database is the queue (design principle 3). A message row is inserted QUEUED and
charged in the same transaction; workers claim due rows by moving them to SUBMITTING with a
lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write transaction is already
exclusive), and record what the line said. These are row operations: the messaging service
(:mod:`simgate.services.messaging`) reads the transition table and passes each UPDATE the
states its event may leave from, so a late or duplicate writer changes nothing.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Integer,
    SmallInteger,
    String,
    func,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.codecs.segments import Encoding
from simgate.domain.messages import STATE_TIME_COLUMN, State
from simgate.domain.queue import IdState, Leased
from simgate.domain.records import MessageRecord, NewMessage
from simgate.store import jsonb_rows, submit_writes, unnest
from simgate.store.sqltext import chunks, marks, one_of, positional_insert
from simgate.store.tables import accounts, itnio_replays, message_parts, messages

__all__ = ["RECORD_COLUMN_NAMES", "STATE_OF", "MessageRepo", "record_of"]

# Stored values to enums by lookup: calling State(...) per row cost more than the row.
STATE_OF: dict[int, State] = {int(s): s for s in State}
_ENCODING_OF: dict[int, Encoding] = {int(e): e for e in Encoding}

# Every NewMessage field but the encoding, read in one call per row; the encoding goes in as a
# plain int (sqlite3 binds an IntEnum through its adapter lookup, about a microsecond a row).
_PLAIN_FIELDS = tuple(f.name for f in fields(NewMessage) if f.name != "encoding")
_plain_values = operator.attrgetter(*_PLAIN_FIELDS)


# The columns of a MessageRecord in field order, so a row converts positionally: building a
# dict per row (row._mapping) cost more than the query for a 500-id get.
RECORD_COLUMN_NAMES: tuple[str, ...] = tuple(MessageRecord.__slots__)
_RECORD_COLUMNS = tuple(messages.c[name] for name in RECORD_COLUMN_NAMES)
_STATE_AT = MessageRecord.__slots__.index("state")
_REPORT_AT = MessageRecord.__slots__.index("report_requested")
_ENCODING_AT = MessageRecord.__slots__.index("encoding")


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


# insert_claimed's rows: one per request (``n`` its position), then one per message.
_CLAIMED_JOB_COLUMNS: tuple[unnest.Col, ...] = (
    ("n", "integer"),
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
    rows = jsonb_rows.source(_CLAIMED_ROW_COLUMNS, 1 + len(_CLAIMED_JOB_COLUMNS))
    columns = ", ".join(_INSERT_COLUMNS)
    spendable = "a.balance_micros + a.gift_micros + a.credit_micros"
    return (
        f"WITH job AS MATERIALIZED (SELECT * FROM {jobs} AS j({job_names})), "
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


def _record(row: Any) -> MessageRecord:
    """From any row holding the record's columns by name (e.g. ``select(messages)``)."""
    data = row._mapping
    return _record_of([data[name] for name in MessageRecord.__slots__])


# The record's slot setters, in field order: a frozen dataclass's __init__ sets each field
# through object.__setattr__ by name, which made building the records of a batch the largest
# part of publishing its changes (the event bus reads them back, issue 15); setting the slots
# directly gives the same object at about 0.6 of the cost.
_SLOT_SETTERS = tuple(getattr(MessageRecord, name).__set__ for name in MessageRecord.__slots__)
_new_record = functools.partial(object.__new__, MessageRecord)


def _record_of(row: Any) -> MessageRecord:
    """From a row of ``select(*_RECORD_COLUMNS)``: positional, no mapping per row."""
    values = list(row)
    values[_STATE_AT] = STATE_OF[values[_STATE_AT]]
    values[_REPORT_AT] = bool(values[_REPORT_AT])
    values[_ENCODING_AT] = _ENCODING_OF[values[_ENCODING_AT]]
    record = _new_record()
    for put, value in zip(_SLOT_SETTERS, values, strict=True):
        put(record, value)
    return record


# For the event bus's joined read (store/event_reads.py).
record_of = _record_of


@functools.cache
def _records_by_ids(dialect: Dialect, count: int) -> str:
    """``SELECT`` of the record columns for ``count`` ids, with positional parameters."""
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(c.name) for c in _RECORD_COLUMNS)
    listed_marks = ", ".join(marks(dialect, count))
    return f"SELECT {names} FROM {quote(messages.name)} WHERE id IN ({listed_marks})"


# What a lease returns of each row, in Leased's order (MessageRepo.lease).
_LEASED_COLUMNS = (
    "id",
    "sender",
    "recipient",
    "text",
    "encoding",
    "parts",
    "port_hint",
    "line",
    "attempts",
    "report_requested",
    "validity_until_ms",
    "lease_seq",
)


@functools.cache
def _lease_sql(dialect: str, lines: int) -> str:
    """:meth:`MessageRepo.lease`'s statement for ``lines`` line names, made once per shape.

    Parameters: now, limit, owner, lease until, then the line names. The states are
    literals (constants of the table, and the condition of the partial index
    ``ix_messages_due`` as written). Built and compiled through SQLAlchemy Core on every
    lease, the statement cost 4-5 % of ``simgate run``'s CPU under HTTP sends (issue 15);
    as text it is the same statement store/leases.py ``lease`` built. On PostgreSQL the
    due rows are locked ``FOR UPDATE SKIP LOCKED`` in a materialised CTE (a row another
    worker is taking is skipped, and the UPDATE cannot rescan the subquery and lease more
    than ``limit``, store/leases.py); SQLite's write transaction is already exclusive."""
    queued, submitting = int(State.QUEUED), int(State.SUBMITTING)
    returning = ", ".join(_LEASED_COLUMNS)
    if dialect == "postgresql":
        names = ", ".join(f"${i}::varchar" for i in range(5, 5 + lines))
        return (
            "WITH due AS MATERIALIZED (SELECT id FROM messages "
            f"WHERE state = {queued} AND line IN ({names}) AND next_attempt_ms <= $1::bigint "
            "ORDER BY next_attempt_ms LIMIT $2::integer FOR UPDATE SKIP LOCKED) "
            f"UPDATE messages SET state = {submitting}, lease_owner = $3::varchar, "
            "lease_until_ms = $4::bigint, submitting_ms = $1::bigint, updated_ms = $1::bigint, "
            "lease_seq = lease_seq + 1 "
            f"WHERE id IN (SELECT id FROM due) AND state = {queued} RETURNING {returning}"
        )
    names = ", ".join(f"?{i}" for i in range(5, 5 + lines))
    return (
        f"UPDATE messages SET state = {submitting}, lease_owner = ?3, lease_until_ms = ?4, "
        "submitting_ms = ?1, updated_ms = ?1, lease_seq = lease_seq + 1 "
        f"WHERE id IN (SELECT id FROM messages WHERE state = {queued} AND line IN ({names}) "
        "AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms LIMIT ?2) "
        f"AND state = {queued} RETURNING {returning}"
    )


def _states(states: Sequence[State]) -> list[int]:
    return [int(s) for s in states]


class MessageRepo:
    # ---- accept ----------------------------------------------------------------------
    async def insert(self, conn: AsyncConnection, rows: Sequence[NewMessage], now_ms: int) -> None:
        """Insert accepted messages QUEUED, charged their price per part."""
        await self.insert_many(conn, [(rows, now_ms)])

    async def insert_many(
        self, conn: AsyncConnection, groups: Sequence[tuple[Sequence[NewMessage], int]]
    ) -> None:
        """:meth:`insert` for the requests of one accept batch, each ``(rows, now_ms)``: one
        driver ``executemany`` for all of them (services/accept_writer.py)."""
        # Tuples straight to the driver's executemany: building and processing a dict of
        # 24 bind values per row through Core tripled the cost of the insert (bench/).
        params = [_insert_values(m, now_ms) for rows, now_ms in groups for m in rows]
        if not params:
            return
        await conn.exec_driver_sql(
            positional_insert(conn.dialect, messages.name, _INSERT_COLUMNS), params
        )

    async def insert_charged(
        self,
        conn: AsyncConnection,
        charges: Sequence[tuple[int, int]],
        groups: Sequence[tuple[Sequence[NewMessage], int, int | None]],
    ) -> set[int]:
        """PostgreSQL: an accept batch in one statement (issue 15). Charges each ``(account
        id, amount)`` of ``charges`` (account ids unique) as :meth:`AccountRepo.charge` does,
        if its balance covers it, and inserts :meth:`insert_many`'s rows of each ``(rows,
        now_ms, payer)`` of ``groups`` whose ``payer`` is None or an account charged now.
        Returns the ids of the accounts charged.

        One statement, not BEGIN, a charge per account, the INSERT and COMMIT: on PostgreSQL
        an accept's cost is its round trips to the server, and run in autocommit
        (Database.submit) this is the only one; in a transaction (the accept batches with
        records of their own) it is one of few. Rows go in as one jsonb parameter
        (store/jsonb_rows.py): one plan and one Bind for the whole batch."""
        rows = [
            (payer, *_insert_values(m, now_ms)) for group, now_ms, payer in groups for m in group
        ]
        ids = [account_id for account_id, _ in charges]
        amounts = [amount for _, amount in charges]
        result = await conn.exec_driver_sql(
            _CHARGED_INSERT_SQL, (ids, amounts, jsonb_rows.encode(rows))
        )
        return {int(row[0]) for row in result}

    async def insert_claimed(
        self,
        conn: AsyncConnection,
        groups: Sequence[tuple[Sequence[NewMessage], int, int | None, int, ReplayRecord | None]],
    ) -> tuple[set[int], set[str]]:
        """PostgreSQL: :meth:`insert_charged` for requests that may carry a replay record
        (the itniotech replay rule, spec §7; store/dialects/itnio.py), in one statement
        (:func:`_claimed_insert_sql`). Each ``(rows, now_ms, payer, amount, record)`` of
        ``groups`` (fingerprints unique, ``payer`` None when nothing is charged) goes on
        when its payer's balance covers every request of that payer here and its record,
        if any, is new: its record is written, ``amount`` charged (one sum per payer) and
        its rows inserted. Returns the payers charged and the fingerprints written; every
        other request changed nothing (a repeat, or a payer short of the sum)."""
        job_values: list[tuple[Any, ...]] = []
        row_values: list[tuple[Any, ...]] = []
        for n, (group, now_ms, payer, amount, record) in enumerate(groups):
            job_values.append((n, payer, amount, *(record or (None, None, None, None))))
            row_values.extend((n, *_insert_values(m, now_ms)) for m in group)
        _, job_arrays = unnest.arrays(_CLAIMED_JOB_COLUMNS, job_values, 1)
        result = await conn.exec_driver_sql(
            _CLAIMED_INSERT_SQL, (*job_arrays, jsonb_rows.encode(row_values))
        )
        charged: set[int] = set()
        claimed: set[str] = set()
        for kind, value in map(tuple, result):
            if kind == 0:
                charged.add(int(value))
            else:
                claimed.add(str(value))
        return charged, claimed

    # ---- the queue -------------------------------------------------------------------
    async def lease(
        self,
        conn: AsyncConnection,
        *,
        lines: Sequence[str],
        owner: str,
        now_ms: int,
        lease_until_ms: int,
        limit: int,
    ) -> list[Leased]:
        """Move up to ``limit`` due QUEUED rows on ``lines`` to SUBMITTING under ``owner``."""
        if not lines or limit <= 0:
            return []
        sql = _lease_sql(conn.dialect.name, len(lines))
        params = (now_ms, limit, owner, lease_until_ms, *lines)
        rows: Iterable[Any] = await conn.exec_driver_sql(sql, params)
        # Positional: the columns come in Leased's order (_LEASED_COLUMNS), and a NamedTuple
        # built by keyword costs more per message.
        leased = [
            Leased(
                mid,
                sender,
                recipient,
                text,
                _ENCODING_OF[encoding],
                parts,
                port_hint,
                line,
                attempts,
                bool(report),
                validity,
                lease_seq,
            )
            for (
                mid,
                sender,
                recipient,
                text,
                encoding,
                parts,
                port_hint,
                line,
                attempts,
                report,
                validity,
                lease_seq,
            ) in rows
        ]
        leased.sort(key=lambda m: m.id)
        return leased

    async def unknown_tries(
        self, conn: AsyncConnection, ids: Sequence[int]
    ) -> dict[int, tuple[str, int]]:
        """Those of ``ids`` that are UNKNOWN: their (line, lease_seq)."""
        out: dict[int, tuple[str, int]] = {}
        for chunk in chunks(ids, 500):
            rows = await conn.execute(
                select(messages.c.id, messages.c.line, messages.c.lease_seq).where(
                    one_of(messages.c.id, chunk, dialect=conn.dialect),
                    messages.c.state == int(State.UNKNOWN),
                )
            )
            out.update((mid, (line, seq)) for mid, line, seq in rows)
        return out

    # What the line said (store/submit_writes.py).
    write_submits = staticmethod(submit_writes.write_submits)
    write_settled_submits = staticmethod(submit_writes.write_settled_submits)

    async def refund(self, conn: AsyncConnection, ids: Sequence[int]) -> None:
        """Credit the charges of ``ids`` back to their accounts and clear them."""
        totals: dict[int, int] = {}
        for chunk in chunks(ids, 500):
            rows = await conn.execute(
                select(messages.c.account_id, func.sum(messages.c.charge_micros))
                .where(messages.c.id.in_(chunk))
                .group_by(messages.c.account_id)
            )
            for account_id, amount in rows:
                totals[account_id] = totals.get(account_id, 0) + int(amount or 0)
        for account_id, amount in totals.items():
            if amount:
                await conn.execute(
                    update(accounts)
                    .where(accounts.c.id == account_id)
                    .values(balance_micros=accounts.c.balance_micros + amount)
                )
        for chunk in chunks(ids, 500):
            await conn.execute(
                update(messages).where(messages.c.id.in_(chunk)).values(charge_micros=0)
            )

    # ---- reaper, validity, cancel ----------------------------------------------------
    async def lapsed_leases(self, conn: AsyncConnection, *, now_ms: int) -> list[int]:
        """SUBMITTING rows whose lease ran out: the worker died mid-submit."""
        rows = await conn.execute(
            select(messages.c.id).where(
                messages.c.state == int(State.SUBMITTING), messages.c.lease_until_ms < now_ms
            )
        )
        return [r.id for r in rows]

    async def end_leases(
        self,
        conn: AsyncConnection,
        ids: Sequence[int],
        *,
        target: State,
        requeue: bool,
        now_ms: int,
    ) -> None:
        """Move lapsed leases to ``target`` (due at once when ``requeue``). An UNKNOWN row keeps
        its lease owner: that worker's journal, read when it restarts, may still show that
        the message never reached the line (dispatch/journal.py)."""
        values: dict[str, Any] = {
            "state": int(target),
            "lease_until_ms": None,
            "updated_ms": now_ms,
            STATE_TIME_COLUMN[target]: now_ms,
        }
        if requeue or target is not State.UNKNOWN:
            values["lease_owner"] = None
        if requeue:
            values["next_attempt_ms"] = now_ms
        for chunk in chunks(ids, 500):
            await conn.execute(
                update(messages)
                .where(
                    messages.c.id.in_(chunk),
                    messages.c.state == int(State.SUBMITTING),
                    messages.c.lease_until_ms < now_ms,
                )
                .values(**values)
            )

    async def lease_of(
        self, conn: AsyncConnection, *, owner: str, ids: Sequence[int]
    ) -> list[IdState]:
        """What is left of ``owner``'s lease: its SUBMITTING rows, and those of ``ids`` it
        left UNKNOWN (the reaper came first)."""
        c = messages.c
        rows = list(
            await conn.execute(
                select(c.id, c.state).where(
                    c.state == int(State.SUBMITTING), c.lease_owner == owner
                )
            )
        )
        for chunk in chunks(ids, 500):
            rows += await conn.execute(
                select(c.id, c.state).where(
                    c.id.in_(chunk), c.state == int(State.UNKNOWN), c.lease_owner == owner
                )
            )
        return [IdState(id=r.id, state=STATE_OF[r.state]) for r in rows]

    async def end_lease_of(
        self,
        conn: AsyncConnection,
        ids: Sequence[int],
        *,
        owner: str,
        sources: Sequence[State],
        target: State,
        now_ms: int,
    ) -> None:
        """Move ``owner``'s rows of ``ids`` still in ``sources`` to ``target``: QUEUED ones
        are due at once and free; UNKNOWN ones keep their owner (as :meth:`end_leases`)."""
        values: dict[str, Any] = {
            "state": int(target),
            "lease_until_ms": None,
            "updated_ms": now_ms,
            STATE_TIME_COLUMN[target]: now_ms,
        }
        if target is State.QUEUED:
            values.update(lease_owner=None, next_attempt_ms=now_ms)
        for chunk in chunks(ids, 500):
            await conn.execute(
                update(messages)
                .where(
                    messages.c.id.in_(chunk),
                    messages.c.state.in_(_states(sources)),
                    messages.c.lease_owner == owner,
                )
                .values(**values)
            )

    async def past_validity(
        self, conn: AsyncConnection, *, states: Sequence[State], now_ms: int, limit: int
    ) -> list[IdState]:
        """Up to ``limit`` messages in ``states`` whose validity ended before ``now_ms``."""
        rows = await conn.execute(
            select(messages.c.id, messages.c.state)
            .where(messages.c.state.in_(_states(states)), messages.c.validity_until_ms < now_ms)
            .limit(limit)
        )
        return [IdState(id=r.id, state=STATE_OF[r.state]) for r in rows]

    async def states_of(
        self, conn: AsyncConnection, ids: Sequence[int], *, states: Sequence[State]
    ) -> list[IdState]:
        """Those of ``ids`` that exist and are in ``states``, with their state."""
        out: list[IdState] = []
        for chunk in chunks(ids, 500):
            rows = await conn.execute(
                select(messages.c.id, messages.c.state).where(
                    messages.c.id.in_(chunk), messages.c.state.in_(_states(states))
                )
            )
            out.extend(IdState(id=r.id, state=STATE_OF[r.state]) for r in rows)
        return out

    async def move(
        self,
        conn: AsyncConnection,
        ids: Sequence[int],
        *,
        sources: Sequence[State],
        target: State,
        now_ms: int,
        error_text: str | None = None,
        due_ms: int | None = None,
    ) -> None:
        """Set ``target`` on those of ``ids`` still in ``sources`` (and ``error_text`` if given;
        due for dispatch at ``due_ms`` if given)."""
        values: dict[str, Any] = {
            "state": int(target),
            STATE_TIME_COLUMN[target]: now_ms,
            "updated_ms": now_ms,
        }
        if error_text is not None:
            values["error_text"] = error_text
        if due_ms is not None:
            values["next_attempt_ms"] = due_ms
        for chunk in chunks(ids, 500):
            await conn.execute(
                update(messages)
                .where(messages.c.id.in_(chunk), messages.c.state.in_(_states(sources)))
                .values(**values)
            )

    async def in_state(
        self,
        conn: AsyncConnection,
        *,
        state: State,
        since_ms: int | None = None,
        line: str | None = None,
    ) -> list[int]:
        """Ids of the messages in ``state`` (that entered it at or after ``since_ms``, on
        ``line``, when given), in id order."""
        q = select(messages.c.id).where(messages.c.state == int(state))
        if since_ms is not None:
            q = q.where(messages.c[STATE_TIME_COLUMN[state]] >= since_ms)
        if line is not None:
            q = q.where(messages.c.line == line)
        return [r.id for r in await conn.execute(q.order_by(messages.c.id))]

    # ---- queries ---------------------------------------------------------------------
    async def get(self, conn: AsyncConnection, ids: Sequence[int]) -> list[MessageRecord]:
        """The records of ``ids`` that exist, in id order (PostgreSQL returns an IN list in
        any order).

        Positional SQL straight to the driver: for getReport's 200 ids, building the IN
        list through Core and processing its rows took 0.33 of the call (issue 15,
        bench/itnio_query.py at 10 M rows); the record conversion is ``_record_of``'s.
        """
        out: list[MessageRecord] = []
        for chunk in chunks(ids, 500):
            sql = _records_by_ids(conn.dialect, len(chunk))
            rows = await conn.exec_driver_sql(sql, tuple(chunk))
            out.extend(_record_of(r) for r in rows)
        out.sort(key=lambda r: r.id)
        return out

    async def page(
        self,
        conn: AsyncConnection,
        *,
        account_id: int | None = None,
        app_id: int | None = None,
        id_from: int | None = None,
        id_to: int | None = None,
        states: Sequence[State] | None = None,
        newest_first: bool = False,
        offset: int = 0,
        limit: int = 100,
    ) -> list[MessageRecord]:
        q = select(*_RECORD_COLUMNS)
        if account_id is not None:
            q = q.where(messages.c.account_id == account_id)
        if app_id is not None:
            q = q.where(messages.c.app_id == app_id)
        if id_from is not None:
            q = q.where(messages.c.id >= id_from)
        if id_to is not None:
            q = q.where(messages.c.id <= id_to)
        if states:
            q = q.where(messages.c.state.in_([int(s) for s in states]))
        q = (
            q.order_by(messages.c.id.desc() if newest_first else messages.c.id)
            .offset(offset)
            .limit(limit)
        )
        return [_record_of(r) for r in await conn.execute(q)]

    async def counts_by_state(self, conn: AsyncConnection) -> dict[State, int]:
        rows = await conn.execute(select(messages.c.state, func.count()).group_by(messages.c.state))
        return {State(s): int(n) for s, n in rows}

    async def queue_depth(self, conn: AsyncConnection) -> int:
        q = select(func.count()).select_from(messages).where(messages.c.state == int(State.QUEUED))
        return int((await conn.execute(q)).scalar_one())

    async def oldest_queued_ms(self, conn: AsyncConnection) -> int | None:
        row = (
            await conn.execute(
                select(func.min(messages.c.queued_ms)).where(messages.c.state == int(State.QUEUED))
            )
        ).scalar()
        return int(row) if row is not None else None

    async def parts_of(self, conn: AsyncConnection, message_id: int) -> list[dict[str, Any]]:
        rows = await conn.execute(
            select(message_parts)
            .where(message_parts.c.message_id == message_id)
            .order_by(message_parts.c.seq)
        )
        return [dict(r._mapping) for r in rows]
