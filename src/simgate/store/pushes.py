"""The push outbox rows: insert planned pushes, claim due ones with leases, record outcomes,
and the operators' reads and repairs.

Due rows are claimed with a lease (the queues' primitive, store/leases.py, on SQLite, where the
write transaction is exclusive; ``FOR UPDATE SKIP LOCKED`` in one statement on PostgreSQL), so
two workers never send the same push concurrently. Ordering: a row is claimable only when no
earlier row of the same (endpoint, order_key) is still pending, so "delivered" never overtakes
"sent". Every function is database work only, safe to re-run (group commit). On PostgreSQL the
claim and the outcomes are one statement each (store/push_pg.py); the versions here are what
SQLite runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    delete,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.pushes import AttemptResult, ClaimedPush
from simgate.store import driver_sql, leases, push_pg
from simgate.store.push_tables import (
    CLAIMED_COLUMNS,
    DEAD,
    DELIVERED,
    ENDED,
    ENDPOINTS_SCANNED,
    FAILED,
    PENDING,
    ClaimedRow,
    claimed_in_due_order,
    open_endpoints,
    push_attempts,
    push_subjects,
    pushes,
)
from simgate.store.sqltext import chunks

# Written into the SQL, not bound: SQLite uses a partial index (WHERE state = 0) only when the
# query's condition is the same literal; a bound parameter made each claim scan every
# pending row (O(n²), 1.5 s per claim at 5 000 pending).
_PENDING_SQL: ColumnElement[int] = literal_column(str(PENDING))
# What a claim hands the sender (and the order it hands them in); a RETURNING row of them
# read by position (store/driver_sql.py answers plain tuples: push_tables.ClaimedRow).
_CLAIMED = [pushes.c[name] for name in CLAIMED_COLUMNS]


# A row the SQLite claim may take (``claim``): due, not leased, the head of its order key.
_CLAIMABLE = f"""p.state = {PENDING} AND p.next_attempt_ms <= ?1
  AND (p.lease_until_ms IS NULL OR p.lease_until_ms < ?1)
  AND (p.order_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM pushes AS e
      WHERE e.state = {PENDING} AND e.endpoint = p.endpoint
        AND e.order_key = p.order_key AND e.id < p.id))"""

# The SQLite claim's candidates: claimable rows of an endpoint whose window is not full (a
# JSON array), in due order. Tried and dropped: the window chosen in SQL as on PostgreSQL
# (row_number() per endpoint, the lease's UPDATE in the same statement) cost SQLite 0.7 ms
# more per claim of 500 candidates than this search and the choice in Python (min of 40, 12
# of 500 taken).
_CANDIDATES = f"""
SELECT p.id, p.endpoint FROM pushes AS p
WHERE {_CLAIMABLE}
  AND p.endpoint NOT IN (SELECT value FROM json_each(?2))
ORDER BY p.next_attempt_ms, p.id
LIMIT ?3
"""

# The same while some endpoint's window is full. Walking ``ix_pushes_due`` then read every
# pending row of the full endpoints only to skip them (~10 ms per claim at 10,000 pending,
# issue 15 debts). Here each open endpoint of ``?2`` (a JSON array: the pending endpoints,
# found by store/push_tables.py ``open_endpoints``, less the full ones) has its first ``?4``
# claimable rows read in due order from ``ix_pushes_endpoint_due``; then the earliest ``?3``.
_CANDIDATES_BY_ENDPOINT = f"""
SELECT c.id, c.endpoint FROM json_each(?2) AS e JOIN pushes AS c ON c.id IN (
    SELECT p.id FROM pushes AS p INDEXED BY ix_pushes_endpoint_due
    WHERE p.endpoint = e.value AND {_CLAIMABLE}
    ORDER BY p.next_attempt_ms, p.id
    LIMIT ?4)
ORDER BY c.next_attempt_ms, c.id
LIMIT ?3
"""


@dataclass(frozen=True, slots=True)
class NewPush:
    """A planned push as it is stored: the request, its endpoint queue and order key."""

    endpoint: str  # scheme://host:port of ``url`` (the per-endpoint queue it waits in)
    order_key: str | None
    kind: str
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None
    signing_secret: str | None
    # Who the push reports to, and the records (messages, incoming SMS) it reports on
    # (migration 0014): the console's account scope and a message's list of pushes.
    account_id: int | None = None
    subjects: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PushRow:
    """One stored push, every column (headers decoded)."""

    id: int
    uid: str
    endpoint: str
    order_key: str | None
    kind: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    signing_secret: str | None
    state: int
    attempts: int
    next_attempt_ms: int
    lease_owner: str | None
    lease_until_ms: int | None
    last_status: int | None
    last_error: str | None
    created_ms: int
    since_ms: int
    updated_ms: int
    done_ms: int | None
    account_id: int | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One recorded attempt of a push (``push_attempts``)."""

    at_ms: int
    outcome: str
    status: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class PushStats:
    pending: int
    in_flight: int
    oldest_pending_ms: int | None
    delivered: int
    failed: int
    dead: int


def _row_of(r: Row[Any]) -> PushRow:
    return PushRow(
        id=int(r.id),
        uid=r.uid,
        endpoint=r.endpoint,
        order_key=r.order_key,
        kind=r.kind,
        method=r.method,
        url=r.url,
        headers=json.loads(r.headers_json),
        body=r.body,
        signing_secret=r.signing_secret,
        state=int(r.state),
        attempts=int(r.attempts),
        next_attempt_ms=int(r.next_attempt_ms),
        lease_owner=r.lease_owner,
        lease_until_ms=r.lease_until_ms,
        last_status=r.last_status,
        last_error=r.last_error,
        created_ms=int(r.created_ms),
        since_ms=int(r.since_ms),
        updated_ms=int(r.updated_ms),
        done_ms=r.done_ms,
        account_id=r.account_id,
    )


async def insert_planned(
    conn: AsyncConnection, planned: Sequence[NewPush], *, now_ms: int
) -> list[str]:
    """Outbox rows for ``planned``, in order (their ids give the delivery order); returns
    their webhook ids."""
    if not planned:
        return []
    rows: list[dict[str, Any]] = [
        {
            "uid": "msg_" + uuid.uuid4().hex,
            "endpoint": p.endpoint[:300],
            "order_key": p.order_key,
            "kind": p.kind[:64],
            "method": p.method,
            "url": p.url,
            "headers_json": json.dumps(dict(p.headers), separators=(",", ":")),
            "body": p.body,
            "signing_secret": p.signing_secret,
            "state": PENDING,
            "attempts": 0,
            "next_attempt_ms": now_ms,
            "created_ms": now_ms,
            "since_ms": now_ms,
            "updated_ms": now_ms,
            "account_id": p.account_id,
        }
        for p in planned
    ]
    if not any(p.subjects for p in planned):
        await conn.execute(insert(pushes), rows)
    else:
        # The new rows' ids link them to their subjects: one statement more per unit of
        # work, not one per push. Matched by uid: asking SQLAlchemy for the rows in the
        # order given (sort_by_parameter_order) made it one INSERT per row on SQLite.
        q = insert(pushes).returning(pushes.c.id, pushes.c.uid)
        id_of = {str(uid): int(pk) for pk, uid in await conn.execute(q, rows)}
        links = {
            (rec, id_of[str(row["uid"])])
            for p, row in zip(planned, rows, strict=True)
            for rec in p.subjects
        }
        await conn.execute(
            insert(push_subjects),
            [{"record_id": rec, "push_id": pid} for rec, pid in sorted(links)],
        )
    return [str(r["uid"]) for r in rows]


async def claim(
    conn: AsyncConnection,
    *,
    owner: str,
    now_ms: int,
    lease_until_ms: int,
    limit: int,
    window: int,
    busy: Mapping[str, int],
    endpoints_scanned: int = ENDPOINTS_SCANNED,
) -> list[ClaimedPush]:
    """Lease up to ``limit`` due rows, at most ``window - busy[endpoint]`` per endpoint.

    While some endpoint's window is full, and no more than ``endpoints_scanned`` endpoints
    have pending pushes, the candidates are read endpoint by endpoint, the full ones left
    out; else in due order, the full endpoints' rows read and skipped."""
    if conn.dialect.name == "postgresql":
        return await push_pg.claim(
            conn,
            owner=owner,
            now_ms=now_ms,
            lease_until_ms=lease_until_ms,
            limit=limit,
            window=window,
            busy=busy,
            endpoints_scanned=endpoints_scanned,
        )
    # The candidates narrow (the window is chosen on id and endpoint); the rows taken come
    # back whole from the lease's UPDATE: most candidates of a busy endpoint are skipped.
    # SQLite: the write transaction is the lock. Raw text, built once: the statement's
    # construction and compilation cost more than SQLite's search (issue 15, py-spy).
    full = [ep for ep, n in busy.items() if n >= window]
    open_ = await open_endpoints(conn, full, endpoints_scanned) if full else None
    params: tuple[int | str, ...]
    if open_ is not None:  # no more than a window's worth from any one endpoint
        sql = _CANDIDATES_BY_ENDPOINT
        params = (now_ms, json.dumps(open_), limit, min(limit, window))
    else:
        sql, params = _CANDIDATES, (now_ms, json.dumps(full), limit)
    room = dict(busy)
    chosen: list[int] = []
    candidates: Sequence[Any] = (await conn.exec_driver_sql(sql, params)).all()
    for pid, endpoint in candidates:
        if room.get(endpoint, 0) >= window:
            continue
        room[endpoint] = room.get(endpoint, 0) + 1
        chosen.append(pid)
    taken = await leases.stamp(
        conn,
        pushes,
        chosen,
        set_values={"lease_owner": owner, "lease_until_ms": lease_until_ms},
        returning=_CLAIMED,
    )
    return claimed_in_due_order(taken, lease_until_ms)


# One outcome (``record``), run for every result of a batch (the driver's executemany): a
# delivery is recorded even if the lease was lost meanwhile (it did arrive), any other outcome
# only while ``?7`` still holds the lease; a "release" only gives the lease back. SQLite
# evaluates every SET expression on the row as it was.
_OUTCOME = f"""
UPDATE pushes SET
    state = CASE ?2 WHEN 'delivered' THEN {DELIVERED} WHEN 'failed' THEN {FAILED}
        WHEN 'dead' THEN {DEAD} ELSE state END,
    done_ms = CASE WHEN ?2 IN ('delivered', 'failed', 'dead') THEN ?6 ELSE done_ms END,
    attempts = attempts + (?2 <> 'release'),
    last_status = CASE WHEN ?2 = 'release' THEN last_status ELSE ?3 END,
    last_error = CASE WHEN ?2 = 'release' THEN last_error ELSE ?4 END,
    next_attempt_ms = CASE WHEN ?2 = 'retry' THEN ?5 ELSE next_attempt_ms END,
    lease_owner = NULL, lease_until_ms = NULL, updated_ms = ?6
WHERE id = ?1 AND state = {PENDING} AND (?2 = 'delivered' OR lease_owner = ?7)
"""

# The batch's attempts (``_log_attempts``).
_ATTEMPT = (
    "INSERT INTO push_attempts (push_id, at_ms, outcome, status, error) VALUES (?, ?, ?, ?, ?)"
)

# ``_recovered``: the endpoints of the batch's deliveries (a JSON array of ids) that had
# failed before get their other backed-off pushes due now.
_RECOVERED = f"""
UPDATE pushes SET next_attempt_ms = ?1
WHERE state = {PENDING} AND attempts > 0 AND next_attempt_ms > ?1
  AND endpoint IN (
      SELECT d.endpoint FROM pushes AS d
      WHERE d.id IN (SELECT value FROM json_each(?2)) AND d.state = {PENDING}
        AND d.attempts > 0)
"""


# ``record``'s next of each order key: for every row of ``?4`` (a JSON array of ids) that is
# no longer pending (its outcome just written: delivered, failed or dead) and has an order key,
# the key's first pending row (``ix_pushes_order``: the earliest, so no earlier one is pending),
# leased to ``?1`` until ``?2`` when it is due and nobody holds it (``?3``: now). The claim's
# own condition (``_CLAIMABLE``), found by one index seek per key instead of a walk.
_NEXT_OF_KEY = f"""
UPDATE pushes SET lease_owner = ?1, lease_until_ms = ?2
WHERE id IN (
    SELECT (SELECT n.id FROM pushes AS n INDEXED BY ix_pushes_order
            WHERE n.state = {PENDING} AND n.endpoint = d.endpoint
              AND n.order_key = d.order_key
            ORDER BY n.endpoint, n.order_key, n.id LIMIT 1)
    FROM pushes AS d
    WHERE d.id IN (SELECT value FROM json_each(?4))
      AND d.order_key IS NOT NULL AND d.state <> {PENDING})
  AND state = {PENDING} AND next_attempt_ms <= ?3
  AND (lease_until_ms IS NULL OR lease_until_ms < ?3)
RETURNING {", ".join(c.name for c in _CLAIMED)}
"""


async def record(
    conn: AsyncConnection,
    results: Sequence[AttemptResult],
    *,
    owner: str,
    now_ms: int,
    lease_until_ms: int | None = None,
) -> list[ClaimedPush]:
    """Apply attempt outcomes: one statement for the batch's outcomes, whatever their kinds,
    and one for its attempt log (a third when it delivers pushes: ``_recovered``).

    A delivery is recorded even if the lease was lost meanwhile (it did arrive); every other
    outcome only while this worker still holds the lease. Raw text run by the driver's
    executemany: SQLAlchemy built and compiled a statement per outcome kind and batch, more
    than SQLite's work (issue 15, py-spy of bench/push_throughput.py); straight on the write
    connection's cursor (store/driver_sql.py), not through SQLAlchemy's execution path (~50
    us of loop CPU per statement on SQLite against a few us of SQLite's own work).

    With ``lease_until_ms``, the order keys whose push ended here carry on in the same
    transaction: each key's next push, when due and free, is leased to ``owner`` and returned
    (the ordered lanes' claim, issue 15: one index seek per key, where the claim walks the
    due index past every pending row of the keys in progress). It is leased only once the
    outcome before it is written, as a claim would lease it, so a crash re-sends no more
    than before. Without it, nothing is claimed (``[]``).
    """
    if conn.dialect.name == "postgresql":
        return await push_pg.record(
            conn, results, owner=owner, now_ms=now_ms, lease_until_ms=lease_until_ms
        )
    if not results:
        return []
    delivered = [r.push_id for r in results if r.outcome == "delivered"]
    if delivered:  # before the deliveries are written: their attempts tell
        await _recovered(conn, delivered, now_ms=now_ms)
    rows = [
        (r.push_id, r.outcome, r.status, (r.error or None) and str(r.error)[:255]) for r in results
    ]
    await driver_sql.run_many(
        conn,
        _OUTCOME,
        [(*row, r.next_attempt_ms, now_ms, owner) for row, r in zip(rows, results, strict=True)],
    )
    logged = [(pid, now_ms, outcome, status, error) for pid, outcome, status, error in rows]
    # An attempt is logged even when its outcome lost the lease: it did reach (or miss) the
    # receiver. A "release" was no attempt. ``now_ms`` is the batch's recording time, within
    # a group commit of the attempt's end.
    logged = [row for row in logged if row[2] != "release"]
    if logged:
        await driver_sql.run_many(conn, _ATTEMPT, logged)
    ended = [r.push_id for r in results if r.outcome in ENDED]
    if lease_until_ms is None or not ended:
        return []
    carried = await driver_sql.fetch(
        conn, _NEXT_OF_KEY, (owner, lease_until_ms, now_ms, json.dumps(ended))
    )
    return claimed_in_due_order(map(ClaimedRow._make, carried), lease_until_ms)


async def attempts_of(conn: AsyncConnection, push_id: int, *, limit: int = 200) -> list[Attempt]:
    """A push's attempts, oldest first (the newest ``limit``)."""
    a = push_attempts.c
    q = select(a.at_ms, a.outcome, a.status, a.error).where(a.push_id == push_id)
    rows = list(await conn.execute(q.order_by(a.id.desc()).limit(limit)))
    return [Attempt(int(t), str(o), s, e) for t, o, s, e in reversed(rows)]


async def ids_about(conn: AsyncConnection, record_id: int) -> list[int]:
    """The pushes that report on a message or incoming SMS, oldest first."""
    s = push_subjects.c
    q = select(s.push_id).where(s.record_id == record_id).order_by(s.push_id)
    return [int(r[0]) for r in await conn.execute(q)]


async def renew(
    conn: AsyncConnection, *, ids: Sequence[int], owner: str, lease_until_ms: int
) -> None:
    """Extend the leases ``owner`` still holds on the pending rows ``ids``."""
    p = pushes.c
    for chunk in chunks(list(ids), 500):
        await conn.execute(
            update(pushes)
            .where(p.id.in_(chunk), p.state == PENDING, p.lease_owner == owner)
            .values(lease_until_ms=lease_until_ms)
        )


async def _recovered(conn: AsyncConnection, delivered: Sequence[int], *, now_ms: int) -> None:
    """An endpoint that accepts a push it had refused before is back (issue 14 item 15): its
    other pushes waiting out a backoff become due now, instead of each at the end of its own
    (a recovered receiver's backlog drained over minutes). Only a retried push's delivery
    triggers it, so a healthy endpoint's deliveries cost one primary-key lookup each; the
    claim's per-endpoint window and order keys still pace what follows."""
    await driver_sql.run(conn, _RECOVERED, (now_ms, json.dumps(list(delivered))))


# ---- operations ---------------------------------------------------------------------
async def page(
    conn: AsyncConnection,
    *,
    states: Sequence[int] = (),
    endpoint: str | None = None,
    kind: str | None = None,
    newest_first: bool = True,
    limit: int = 50,
    offset: int = 0,
    account_id: int | None = None,
) -> list[PushRow]:
    q = select(pushes)
    if account_id is not None:
        q = q.where(pushes.c.account_id == account_id)
    if len(states) == 1:  # a literal, so the dead-letter view uses its partial index
        q = q.where(pushes.c.state == literal_column(str(int(states[0]))))
    elif states:
        q = q.where(pushes.c.state.in_(list(states)))
    if endpoint:
        q = q.where(pushes.c.endpoint == endpoint)
    if kind:
        q = q.where(pushes.c.kind == kind)
    order = pushes.c.id.desc() if newest_first else pushes.c.id
    q = q.order_by(order).offset(offset).limit(limit)
    return [_row_of(r) for r in await conn.execute(q)]


async def get(conn: AsyncConnection, ref: str) -> PushRow | None:
    """One push by its numeric id or its ``msg_...`` webhook id."""
    cond = pushes.c.id == int(ref) if ref.isdigit() else pushes.c.uid == ref
    row = (await conn.execute(select(pushes).where(cond))).first()
    return None if row is None else _row_of(row)


async def requeue(
    conn: AsyncConnection,
    *,
    now_ms: int,
    ids: Sequence[int] = (),
    states: Sequence[int] = (),
    endpoint: str | None = None,
    account_id: int | None = None,
) -> int:
    """Send finished (failed/dead) pushes again from now, with a fresh retry period (only
    ``account_id``'s when given)."""
    cond: list[ColumnElement[bool]] = [pushes.c.state.in_(list(states) or [FAILED, DEAD])]
    if account_id is not None:
        cond.append(pushes.c.account_id == account_id)
    if ids:
        cond.append(pushes.c.id.in_(list(ids)))
    if endpoint:
        cond.append(pushes.c.endpoint == endpoint)
    result = await conn.execute(
        update(pushes)
        .where(*cond)
        .values(
            state=PENDING,
            next_attempt_ms=now_ms,
            since_ms=now_ms,
            done_ms=None,
            lease_owner=None,
            lease_until_ms=None,
            updated_ms=now_ms,
        )
    )
    return int(result.rowcount or 0)


async def purge(conn: AsyncConnection, *, states: Sequence[int], older_than_ms: int) -> int:
    """Delete finished pushes (never pending ones) last changed before ``older_than_ms``."""
    keep_pending = [s for s in states if s != PENDING]
    if not keep_pending:
        return 0
    gone = select(pushes.c.id).where(
        pushes.c.state.in_(keep_pending), pushes.c.updated_ms < older_than_ms
    )
    # Their attempts and subject links first (read through the same condition).
    await conn.execute(delete(push_attempts).where(push_attempts.c.push_id.in_(gone)))
    await conn.execute(delete(push_subjects).where(push_subjects.c.push_id.in_(gone)))
    result = await conn.execute(
        delete(pushes).where(pushes.c.state.in_(keep_pending), pushes.c.updated_ms < older_than_ms)
    )
    return int(result.rowcount or 0)


async def stats(conn: AsyncConnection, *, now_ms: int, finished: bool = True) -> PushStats:
    """Counts for metrics and operators. ``finished=False`` skips counting delivered and
    failed rows (a scan of the whole table); pending and dead use their partial indexes."""
    counts: dict[int, int] = {}
    for state in (PENDING, DEAD):
        q = select(func.count()).select_from(pushes)
        q = q.where(pushes.c.state == literal_column(str(state)))
        counts[state] = int((await conn.execute(q)).scalar_one())
    if finished:
        rows = await conn.execute(
            select(pushes.c.state, func.count())
            .where(pushes.c.state.in_([DELIVERED, FAILED]))
            .group_by(pushes.c.state)
        )
        counts.update({int(s): int(n) for s, n in rows})
    oldest = (
        await conn.execute(
            select(func.min(pushes.c.created_ms)).where(pushes.c.state == _PENDING_SQL)
        )
    ).scalar()
    flying = (
        await conn.execute(
            select(func.count())
            .select_from(pushes)
            .where(pushes.c.state == _PENDING_SQL, pushes.c.lease_until_ms >= now_ms)
        )
    ).scalar_one()
    return PushStats(
        pending=counts.get(PENDING, 0),
        in_flight=int(flying),
        oldest_pending_ms=None if oldest is None else int(oldest),
        delivered=counts.get(DELIVERED, 0),
        failed=counts.get(FAILED, 0),
        dead=counts.get(DEAD, 0),
    )


async def pending_by_endpoint(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(
        select(pushes.c.endpoint, func.count())
        .where(pushes.c.state == _PENDING_SQL)
        .group_by(pushes.c.endpoint)
    )
    return {str(e): int(n) for e, n in rows}
