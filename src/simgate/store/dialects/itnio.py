"""Store work of the itniotech dialect: replay records (spec §7) and the getSentRcd page.

The page query reads only the columns getSentRcd renders: building full MessageRecords for
50 000 rows costs more than the query itself (bench/itnio_query.py).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.messages import State
from simgate.domain.records import SentRow
from simgate.errors import StoreError
from simgate.store import driver_sql
from simgate.store.database import Database
from simgate.store.sqltext import chunks
from simgate.store.tables import itnio_replays as t
from simgate.store.tables import messages as m

PENDING = ""  # returned by claim() when another request holds the claim without a response

# A record's key before migration 0016: the request's sha256, 64 hex digits; since then the
# request's Timestamp (13 digits of milliseconds) comes first (api/dialects/itnio/replay.py
# ``replay_key``), so records go into the key's index in time order.
LEGACY_KEY_LENGTH = 64

# The column recording when a message reached each final-or-sent state.
_REACHED: dict[State, ColumnElement[int]] = {
    State.SENT: m.c.sent_ms,
    State.DELIVERED: m.c.delivered_ms,
    State.FAILED: m.c.failed_ms,
    State.EXPIRED: m.c.expired_ms,
    State.REJECTED: m.c.rejected_ms,
}
_STATES = {int(s): s for s in State}

# getReport's row (spec §1.5), straight from the driver: id, recipient, state,
# report_requested, reached_ms (the final state's time, else sent_ms), charge_micros, parts,
# price_micros, currency. A tuple, not a record: at 200 ids a frozen 35-field record per
# row cost as much as the query (issue 15 "reads", bench/itnio_query.py).
ReportRow = tuple[int, str, int, bool, int | None, int, int, int, str]

_REPORT_CHUNK = 500  # ids per statement (bounded parameter counts); getReport asks 200


@functools.cache
def _report_sql(count: int) -> str:
    """getReport's SELECT for ``count`` ids of one app, built once per count."""
    reached = " ".join(
        f"WHEN {int(s)} THEN {col.name}" for s, col in _REACHED.items() if s is not State.SENT
    )
    return (
        "SELECT id, recipient, state, report_requested, "
        f"COALESCE(CASE state {reached} END, sent_ms), "
        "charge_micros, parts, price_micros, currency "
        f"FROM {m.name} WHERE app_id = ? AND id IN ({', '.join('?' * count)})"
    )


async def report_rows(db: Database, *, app_id: int, ids: Sequence[int]) -> list[ReportRow]:
    """The app's messages among ``ids`` (others' are not found), in no particular order:
    every chunk in one read (store/database.py ``fetch``: one thread call on SQLite)."""
    if not ids:
        return []
    statements = [
        (_report_sql(len(chunk)), (app_id, *chunk)) for chunk in chunks(ids, _REPORT_CHUNK)
    ]
    return [row for rows in await db.fetch(statements) for row in rows]


@dataclass(frozen=True, slots=True)
class Claim:
    """What claiming a fingerprint found. ``owned``: this caller runs the request, and
    ``token`` (the claim's ``created_ms``) fences its writes; else ``response`` is the stored
    answer, or ``PENDING`` while another owner runs (None: no record)."""

    owned: bool
    token: int = 0
    response: str | None = None


# The batch statements of the replay records, as driver SQL: one text whatever the batch size
# on PostgreSQL (arrays), one per size on SQLite; compiling Core statements of a new shape
# for every batch cost more than running them (issue 15, bench/http_send.py).
# A batch of new records (a response, or NULL while its owner runs): the fingerprints taken.
_PG_RECORDS = (
    "INSERT INTO itnio_replays (fingerprint, expires_ms, response, created_ms) "
    "SELECT f, e, r, c FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[]) "
    "AS a(f, e, r, c) ON CONFLICT (fingerprint) DO NOTHING RETURNING fingerprint"
)
# Fingerprints per IN list of the SQLite look-up (SQLite's default limit is 32 766
# parameters); PostgreSQL's arrays take a batch (services/itnio.py: 500 at most) at once.
_RECORDS_PER_STATEMENT = 500

# SQLite: one row per execution, no RETURNING. SQLite buffers a RETURNING statement's rows in
# an ephemeral table before it hands back the first: the multi-row INSERT .. RETURNING cost
# 3-4x the rows' inserts themselves (12-30 us of CPU per record against 5-7 for these, issue
# 15 measurement; 4-6 % of the event loop's time on a one-number sendSms under load).
_SQLITE_RECORD = (
    "INSERT INTO itnio_replays (fingerprint, expires_ms, response, created_ms) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING"
)


@functools.cache
def _sqlite_recorded(count: int) -> str:
    marks = ", ".join("?" * count)
    return f"SELECT fingerprint FROM itnio_replays WHERE fingerprint IN ({marks})"


@functools.cache
def _sqlite_stored(count: int) -> str:
    marks = ", ".join("?" * count)
    return (
        "SELECT fingerprint, created_ms, response FROM itnio_replays "
        f"WHERE fingerprint IN ({marks})"
    )


async def _insert_records(
    conn: AsyncConnection,
    records: Sequence[tuple[str, int, str | None, int]],
    *,
    answered: bool = False,
) -> set[str]:
    """Insert ``(fingerprint, expires_ms, response, created_ms)`` records of distinct
    fingerprints where none exists yet; the fingerprints inserted. In fingerprint order: two
    PostgreSQL transactions inserting some of the same fingerprints wait for each other in
    one order, never in a cycle (a deadlock). ``answered``: every record has its response
    (SQLite then inserts first and looks only when some were not inserted)."""
    if conn.dialect.name != "postgresql":
        if answered and len(records) > 1:
            return await _insert_answered_sqlite(conn, records)
        return await _insert_records_sqlite(conn, records)
    taken: set[str] = set()
    for chunk in chunks(sorted(records), _RECORDS_PER_STATEMENT):
        columns = tuple(list(c) for c in zip(*chunk, strict=True))
        result = await conn.exec_driver_sql(_PG_RECORDS, columns)
        taken.update(row[0] for row in result)
    return taken


async def _insert_records_sqlite(
    conn: AsyncConnection, records: Sequence[tuple[str, int, str | None, int]]
) -> set[str]:
    """:func:`_insert_records` on SQLite, without RETURNING (see ``_SQLITE_RECORD``).

    Every write runs in a ``BEGIN IMMEDIATE`` transaction (store/database.py), which holds
    the database's one write lock from its start: no other connection, in this process or
    another, can insert a fingerprint between the look-up and the INSERT below. So the
    records not found are exactly the ones the INSERT writes; its row count checks that."""
    if len(records) == 1:
        # One record (a request alone in its batch): the INSERT's row count says it all.
        return (
            {records[0][0]}
            if await driver_sql.run_many(conn, _SQLITE_RECORD, records) == 1
            else set()
        )
    found: set[str] = set()
    for chunk in chunks([r[0] for r in records], _RECORDS_PER_STATEMENT):
        result = await conn.exec_driver_sql(_sqlite_recorded(len(chunk)), tuple(chunk))
        found.update(row[0] for row in result)
    new = [r for r in records if r[0] not in found]
    # The write lock says every one of them is inserted; refuse to guess otherwise.
    if new and await driver_sql.run_many(conn, _SQLITE_RECORD, new) != len(new):
        raise StoreError("itnio_replays changed under the write lock")
    return {r[0] for r in new}


async def _insert_answered_sqlite(
    conn: AsyncConnection, records: Sequence[tuple[str, int, str | None, int]]
) -> set[str]:
    """:func:`_insert_records_sqlite` for records that carry their responses: the INSERT
    first, without the look-up before it. A batch almost always holds new fingerprints only
    (a replay is a client's retry), and then the INSERT's row count alone says every record
    was taken (issue 15: the look-up cost ~4 us of the event loop's CPU per record, about a
    third of what the batch's records cost there).

    When the count falls short, the records now stored under the batch's fingerprints are
    read: the inserted ones are those holding this batch's own ``created_ms`` and response.
    A record stored before with the same two values (a copy of the same request refused with
    the same words in the same millisecond) would look inserted too; the row count tells
    that case, and it is refused (StoreError) rather than guessed: the batch is then written
    again request by request (services/gather.py), each decided by its own row count."""
    inserted = await driver_sql.run_many(conn, _SQLITE_RECORD, records)
    if inserted == len(records):
        return {r[0] for r in records}
    mine = {r[0]: (r[3], r[2]) for r in records}
    taken: set[str] = set()
    for chunk in chunks(list(mine), _RECORDS_PER_STATEMENT):
        stored: Iterable[Any] = await conn.exec_driver_sql(_sqlite_stored(len(chunk)), tuple(chunk))
        taken.update(fp for fp, created, response in stored if mine[fp] == (created, response))
    if len(taken) != inserted:
        raise StoreError("an itnio_replays record equals a new one: written one by one")
    return taken


@dataclass(frozen=True, slots=True)
class NewClaim:
    """A request's claim of its fingerprint (see :meth:`ReplayRepo.claim`)."""

    fingerprint: str
    expires_ms: int
    now_ms: int
    takeover_after_ms: int | None = None


@dataclass(frozen=True, slots=True)
class NewAnswered:
    """A request's claim of its fingerprint written with its answer (see
    :meth:`ReplayRepo.claim_answered`); ``now_ms`` is the claim's token."""

    fingerprint: str
    expires_ms: int
    now_ms: int
    response: str
    takeover_after_ms: int | None = None


class ReplayRepo:
    async def claim(
        self,
        conn: AsyncConnection,
        *,
        fingerprint: str,
        expires_ms: int,
        now_ms: int,
        takeover_after_ms: int | None = None,
    ) -> Claim:
        """Own the fingerprint (one INSERT .. ON CONFLICT DO NOTHING, so concurrent claimers
        in other processes are serialised by the primary key), or find its record.

        A claim still unanswered ``takeover_after_ms`` after it was made is taken over: its
        owner died before answering (issue 14 item 14). The claim's ``created_ms`` is its
        token: the new owner writes its own (later, so different), and every write of the old
        owner names the old token and so changes nothing (fencing: if it was only slow, one of
        the two commits its answer, never both)."""
        make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        result = await conn.execute(
            make(t)
            .values(
                fingerprint=fingerprint, expires_ms=expires_ms, response=None, created_ms=now_ms
            )
            .on_conflict_do_nothing(index_elements=["fingerprint"])
        )
        if result.rowcount == 1:
            return Claim(owned=True, token=now_ms)
        row = (
            await conn.execute(
                select(t.c.response, t.c.created_ms, t.c.expires_ms).where(
                    t.c.fingerprint == fingerprint
                )
            )
        ).first()
        if row is None:  # released meanwhile: the caller may claim it anew
            return Claim(owned=False, response=None)
        if row.response is not None:
            return Claim(owned=False, response=str(row.response))
        if takeover_after_ms is not None and row.created_ms + takeover_after_ms < now_ms:
            taken = await conn.execute(
                update(t)
                .where(
                    t.c.fingerprint == fingerprint,
                    t.c.response.is_(None),
                    t.c.created_ms == row.created_ms,
                )
                .values(created_ms=now_ms, expires_ms=max(row.expires_ms, expires_ms))
            )
            if taken.rowcount == 1:
                return Claim(owned=True, token=now_ms)
        return Claim(owned=False, response=PENDING)

    async def claim_many(self, conn: AsyncConnection, claims: Sequence[NewClaim]) -> list[Claim]:
        """:meth:`claim` for the claims of one batch (services/gather.py): one multi-row
        INSERT .. ON CONFLICT DO NOTHING RETURNING the fingerprints it took; the others (a
        replay, a fingerprint twice in the batch) go through :meth:`claim` one by one."""
        first: dict[str, int] = {}
        for i, c in enumerate(claims):
            first.setdefault(c.fingerprint, i)
        taken = await _insert_records(
            conn,
            [
                (c.fingerprint, c.expires_ms, None, c.now_ms)
                for c in (claims[i] for i in first.values())
            ],
        )
        out: list[Claim] = []
        for i, c in enumerate(claims):
            if c.fingerprint in taken and first[c.fingerprint] == i:
                out.append(Claim(owned=True, token=c.now_ms))
            else:
                out.append(
                    await self.claim(
                        conn,
                        fingerprint=c.fingerprint,
                        expires_ms=c.expires_ms,
                        now_ms=c.now_ms,
                        takeover_after_ms=c.takeover_after_ms,
                    )
                )
        return out

    async def lookup(self, conn: AsyncConnection, fingerprint: str) -> str | None:
        row = (
            await conn.execute(select(t.c.response).where(t.c.fingerprint == fingerprint))
        ).first()
        if row is None:
            return None
        return PENDING if row.response is None else str(row.response)

    async def complete(
        self, conn: AsyncConnection, *, fingerprint: str, response: str, token: int
    ) -> bool:
        """Store the answer of the claim ``token``; False when that claim was taken over
        (or already answered)."""
        result = await conn.execute(
            update(t)
            .where(
                t.c.fingerprint == fingerprint,
                t.c.created_ms == token,
                t.c.response.is_(None),
            )
            .values(response=response)
        )
        return result.rowcount == 1

    async def claim_answered(
        self, conn: AsyncConnection, claims: Sequence[NewAnswered]
    ) -> list[Claim]:
        """Own each fingerprint with its answer already written, in the caller's transaction
        (the one that commits the work answered): one multi-row INSERT .. ON CONFLICT DO
        NOTHING for the batch, so a request and its answer are committed together or not at
        all, and no claim is ever left unanswered by a crash.

        A fingerprint already recorded is not owned: its record's answer comes back
        (``PENDING`` while an owner of :meth:`claim` still runs, None when it vanished
        meanwhile). An unanswered claim older than ``takeover_after_ms`` is taken over with
        this answer (its owner died: issue 14 item 14). A fingerprint twice in the batch is
        owned by its first claim; the later ones hear its answer."""
        first: dict[str, int] = {}
        for i, c in enumerate(claims):
            first.setdefault(c.fingerprint, i)
        taken = await _insert_records(
            conn,
            [
                (c.fingerprint, c.expires_ms, c.response, c.now_ms)
                for c in (claims[i] for i in first.values())
            ],
            answered=True,
        )
        out: list[Claim] = []
        for i, c in enumerate(claims):
            owner = first[c.fingerprint]
            if c.fingerprint in taken:
                if owner == i:
                    out.append(Claim(owned=True, token=c.now_ms))
                else:
                    out.append(Claim(owned=False, response=claims[owner].response))
            elif owner == i:
                out.append(await self._recorded(conn, c))
            else:  # the first of the batch met a record: so do the others
                found = out[owner]
                out.append(
                    found
                    if not found.owned
                    else Claim(owned=False, response=claims[owner].response)
                )
        return out

    async def _recorded(self, conn: AsyncConnection, claim: NewAnswered) -> Claim:
        """What the record of ``claim``'s fingerprint holds; an unanswered one past its
        owner's time is taken over with ``claim``'s answer (see :meth:`claim`)."""
        row = (
            await conn.execute(
                select(t.c.response, t.c.created_ms, t.c.expires_ms).where(
                    t.c.fingerprint == claim.fingerprint
                )
            )
        ).first()
        if row is None:  # released meanwhile: the first copy failed
            return Claim(owned=False, response=None)
        if row.response is not None:
            return Claim(owned=False, response=str(row.response))
        after = claim.takeover_after_ms
        if after is not None and row.created_ms + after < claim.now_ms:
            taken = await conn.execute(
                update(t)
                .where(
                    t.c.fingerprint == claim.fingerprint,
                    t.c.response.is_(None),
                    t.c.created_ms == row.created_ms,
                )
                .values(
                    response=claim.response,
                    created_ms=claim.now_ms,
                    expires_ms=max(row.expires_ms, claim.expires_ms),
                )
            )
            if taken.rowcount == 1:
                return Claim(owned=True, token=claim.now_ms)
        return Claim(owned=False, response=PENDING)

    async def drop_answered(self, conn: AsyncConnection, owned: Sequence[tuple[str, int]]) -> None:
        """Take back claims of ``(fingerprint, token)`` written by :meth:`claim_answered` in
        this transaction (their requests were refused after all)."""
        for fingerprint, token in owned:
            await conn.execute(
                delete(t).where(t.c.fingerprint == fingerprint, t.c.created_ms == token)
            )

    async def release(self, conn: AsyncConnection, *, fingerprint: str, token: int) -> None:
        await conn.execute(
            delete(t).where(
                t.c.fingerprint == fingerprint, t.c.created_ms == token, t.c.response.is_(None)
            )
        )

    async def legacy_until(self, conn: AsyncConnection) -> int:
        """When the last record keyed by a bare digest (:data:`LEGACY_KEY_LENGTH`, written
        before migration 0016) expires; 0 when there is none. Its request's replays are
        refused by their Timestamp after that, so the old key need not be looked up then."""
        row = (
            await conn.execute(
                select(func.max(t.c.expires_ms)).where(
                    func.length(t.c.fingerprint) == LEGACY_KEY_LENGTH
                )
            )
        ).first()
        return 0 if row is None or row[0] is None else int(row[0])

    async def purge(self, conn: AsyncConnection, *, now_ms: int) -> int:
        result = await conn.execute(delete(t).where(t.c.expires_ms < now_ms))
        return int(result.rowcount or 0)


async def sent_page(
    conn: AsyncConnection,
    *,
    app_id: int,
    id_from: int,
    id_to: int,
    states: Sequence[State],
    offset: int,
    limit: int,
) -> list[SentRow]:
    """One page of an app's messages in an id (= time) range, via the (app_id, id) index."""
    reached = func.coalesce(
        case({int(s): col for s, col in _REACHED.items()}, value=m.c.state), m.c.sent_ms
    )
    q = (
        select(m.c.id, m.c.recipient, m.c.state, reached)
        .where(
            m.c.app_id == app_id,
            m.c.id >= id_from,
            m.c.id <= id_to,
            or_(*(m.c.state == int(s) for s in states)),
        )
        .order_by(m.c.id)
        .offset(offset)
        .limit(limit)
    )
    states_of = _STATES
    return [
        SentRow(row[0], row[1], states_of[row[2]], row[3])
        for row in (await conn.execute(q)).fetchall()
    ]
