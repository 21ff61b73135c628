"""The push outbox's claim and outcomes on PostgreSQL: one statement each (issue 15).

store/pushes.py has the portable versions (SQLite runs them). On PostgreSQL they cost a
select then an update of the same rows to claim, and one UPDATE execution per outcome plus
one INSERT per attempt to record (asyncpg's executemany binds and runs the statement once
per row): the server's CPU, shared with the sender and the receiver on a small machine, was
what kept pushes at 0.70 of plain httpx there. Here

- the claim locks the due rows, applies the per-endpoint window and stamps the lease in one
  ``UPDATE ... RETURNING`` (the window is a ``row_number()`` per endpoint over the locked
  candidates, the same choice the portable claim makes in Python), planned to read the due
  index in order whatever the table's statistics say (two planner settings, set for that
  statement and put back: see ``claim``);
- the outcomes of a batch, whatever their kinds, and its attempt log are one statement over
  ``unnest`` arrays; the recovered-endpoint update (see store/pushes.py ``_recovered``) is
  a second one, only when a push that had failed before was delivered.

Values always travel as bound parameters; only the state codes are written into the SQL (as
literals: the partial indexes' predicates must match them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.pushes import AttemptResult, ClaimedPush
from simgate.store.push_tables import (
    CLAIMED_COLUMNS,
    DEAD,
    DELIVERED,
    ENDED,
    FAILED,
    PENDING,
    claimed_in_due_order,
    open_endpoints,
)

__all__ = ["claim", "record"]

# Candidates locked per claim, per row it may take: the spare ones stand in for rows of
# endpoints whose window is full (the portable claim reads as many).
CANDIDATES_PER_ROW = 1

# A row the claim may take: due, not leased, the head of its order key (``$1``: now). The
# order-key check is a scalar subquery ordered as ``ix_pushes_order`` is, not NOT EXISTS
# (which PostgreSQL plans without its ORDER BY): without statistics the planner costed
# ``ix_pushes_endpoint_due`` the same and read the endpoint's pending rows for every
# candidate (4 s per claim at 10,000 pending, 10 per key); with sorting off it cannot.
_CLAIMABLE = f"""p.state = {PENDING} AND p.next_attempt_ms <= $1
      AND (p.lease_until_ms IS NULL OR p.lease_until_ms < $1)
      AND (p.order_key IS NULL OR (
          SELECT e.id FROM pushes AS e
          WHERE e.state = {PENDING} AND e.endpoint = p.endpoint
            AND e.order_key = p.order_key AND e.id < p.id
          ORDER BY e.endpoint, e.order_key, e.id LIMIT 1) IS NULL)"""

# What a claim's UPDATE hands back (push_tables.CLAIMED_COLUMNS: claimed_in_due_order's).
_RETURNED = ", ".join(f"t.{name}" for name in CLAIMED_COLUMNS)

# The window per endpoint over the locked candidates (``cand``), and the lease stamped.
_CHOOSE_AND_STAMP = f"""
), slotted AS (
    SELECT c.id, c.next_attempt_ms, coalesce(b.n, 0)
        + row_number() OVER (PARTITION BY c.endpoint ORDER BY c.next_attempt_ms, c.id) AS slot
    FROM cand AS c LEFT JOIN unnest($4::text[], $5::int[]) AS b(endpoint, n)
        ON b.endpoint = c.endpoint
), chosen AS (
    SELECT id FROM slotted WHERE slot <= $6 ORDER BY next_attempt_ms, id LIMIT $7
)
UPDATE pushes AS t SET lease_owner = $8, lease_until_ms = $9
WHERE t.id = ANY(ARRAY(SELECT id FROM chosen))
RETURNING {_RETURNED}
"""

_CLAIM = f"""
WITH cand AS MATERIALIZED (
    SELECT p.id, p.endpoint, p.next_attempt_ms FROM pushes AS p
    WHERE {_CLAIMABLE}
      AND p.endpoint <> ALL($2::text[])
    ORDER BY p.next_attempt_ms, p.id
    LIMIT $3
    FOR UPDATE OF p SKIP LOCKED
{_CHOOSE_AND_STAMP}"""

# The same while some endpoint's window is full. Walking ``ix_pushes_due`` then read every
# pending row of the full endpoints only to skip them (~10 ms per claim at 10,000 pending,
# issue 15 debts). Here each open endpoint of ``$2`` (the pending endpoints, found by
# store/push_tables.py ``open_endpoints``, less the full ones) has its first ``$3`` claimable
# rows locked in due order from ``ix_pushes_endpoint_due``.
_CLAIM_BY_ENDPOINT = f"""
WITH cand AS MATERIALIZED (
    SELECT c.id, c.endpoint, c.next_attempt_ms
    FROM unnest($2::text[]) AS endpoints(ep) CROSS JOIN LATERAL (
        SELECT p.id, p.endpoint, p.next_attempt_ms FROM pushes AS p
        WHERE p.endpoint = endpoints.ep AND {_CLAIMABLE}
        ORDER BY p.endpoint, p.next_attempt_ms, p.id
        LIMIT $3
        FOR UPDATE OF p SKIP LOCKED
    ) AS c
{_CHOOSE_AND_STAMP}"""

# The claim's planner settings, for its one statement (``claim``): the values they had are
# read first (the materialized CTE runs before the settings change), then put back.
_IN_INDEX_ORDER = """
WITH was AS MATERIALIZED (
    SELECT current_setting('enable_sort') AS sort, current_setting('jit') AS jit,
        current_setting('enable_seqscan') AS seqscan
)
SELECT was.sort, was.jit, was.seqscan, set_config('enable_sort', 'off', true),
    set_config('jit', 'off', true), set_config('enable_seqscan', 'off', true)
FROM was
"""
_RESTORE = """
SELECT set_config('enable_sort', $1, true), set_config('jit', $2, true),
    set_config('enable_seqscan', $3, true)
"""


async def claim(
    conn: AsyncConnection,
    *,
    owner: str,
    now_ms: int,
    lease_until_ms: int,
    limit: int,
    window: int,
    busy: Mapping[str, int],
    endpoints_scanned: int,
) -> list[ClaimedPush]:
    """store/pushes.py ``claim`` in one statement: lease up to ``limit`` due rows, at most
    ``window - busy[endpoint]`` per endpoint, in due order.

    Planned with ``enable_sort`` off, so the candidates can only come from ``ix_pushes_due``
    in index order and the scan stops after ``limit * 2`` of them. When the planner believes
    few rows are pending (a table not analyzed yet, or analyzed while the outbox was empty;
    then a backlog builds up during a receiver's outage) it costs every plan alike and may
    pick one that reads every due row through another index or a bitmap, checks each one's
    order key and sorts them all: 13 ms per claim at 10,000 pending in the benchmark, against
    3 ms, and growing with the backlog. Only sorting had to be ruled out: the other sorts of
    the statement run as before (their rows are few), but their penalty cost would have made
    PostgreSQL compile the plan with JIT (250 ms), hence ``jit`` off too. With the same
    belief it found the chosen rows for the lease's UPDATE by reading the whole table (a hash
    join, or a filter on ``id = ANY``), finished rows too: ``enable_seqscan`` is off as well,
    so they are looked up by primary key. The settings are restored after the statement:
    other jobs share the transaction (group commit).

    While some endpoint's window is full, and no more than ``endpoints_scanned`` endpoints
    have pending pushes (found by one statement more, under the same settings), the statement
    is :data:`_CLAIM_BY_ENDPOINT`, which never reads the full endpoints' rows.
    """
    full = [ep for ep, n in busy.items() if n >= window]
    held = [(ep, n) for ep, n in busy.items() if n < window]
    (was,) = await conn.exec_driver_sql(_IN_INDEX_ORDER)
    open_ = await open_endpoints(conn, full, endpoints_scanned) if full else None
    if open_ is not None:  # no more than a window's worth from any one endpoint
        sql, endpoints, candidates = _CLAIM_BY_ENDPOINT, open_, min(limit, window)
    else:
        sql, endpoints, candidates = _CLAIM, full, limit * CANDIDATES_PER_ROW
    rows = await conn.exec_driver_sql(
        sql,
        (
            now_ms,
            endpoints,
            candidates,
            [ep for ep, _ in held],
            [n for _, n in held],
            window,
            limit,
            owner,
            lease_until_ms,
        ),
    )
    await conn.exec_driver_sql(_RESTORE, (was.sort, was.jit, was.seqscan))
    return claimed_in_due_order(rows, lease_until_ms)


# One row per outcome: ``v``. A delivery is recorded even if the lease was lost meanwhile
# (it did arrive), any other outcome only while ``$2`` still holds the lease; a "release"
# only gives the lease back. Every attempt but a release is logged, lease or not (it did
# reach, or miss, the receiver). RETURNING names the endpoints of deliveries after earlier
# failed attempts (``attempts`` counts this one too), for the recovered-endpoint update.
_RECORD = f"""
WITH v AS (
    SELECT * FROM unnest($3::bigint[], $4::text[], $5::int[], $6::text[], $7::bigint[])
        WITH ORDINALITY AS v(id, outcome, status, error, next_ms, ord)
), done AS (
    UPDATE pushes AS t SET
        state = CASE v.outcome WHEN 'delivered' THEN {DELIVERED} WHEN 'failed' THEN {FAILED}
            WHEN 'dead' THEN {DEAD} ELSE t.state END,
        done_ms = CASE WHEN v.outcome IN ('delivered', 'failed', 'dead') THEN $1
            ELSE t.done_ms END,
        attempts = t.attempts + CASE WHEN v.outcome = 'release' THEN 0 ELSE 1 END,
        last_status = CASE WHEN v.outcome = 'release' THEN t.last_status ELSE v.status END,
        last_error = CASE WHEN v.outcome = 'release' THEN t.last_error ELSE v.error END,
        next_attempt_ms = CASE WHEN v.outcome = 'retry' THEN v.next_ms
            ELSE t.next_attempt_ms END,
        lease_owner = NULL, lease_until_ms = NULL, updated_ms = $1
    FROM v
    WHERE t.id = v.id AND t.state = {PENDING}
      AND (v.outcome = 'delivered' OR t.lease_owner = $2)
    RETURNING t.endpoint, t.attempts, v.outcome
), logged AS (
    INSERT INTO push_attempts (push_id, at_ms, outcome, status, error)
    SELECT id, $1, outcome, status, error FROM v WHERE outcome <> 'release' ORDER BY ord
)
SELECT DISTINCT endpoint FROM done WHERE outcome = 'delivered' AND attempts > 1
"""

# An endpoint that accepted a push it had refused before is back: its other pushes waiting
# out a backoff become due now (store/pushes.py ``_recovered``). The batch's own rows are
# left alone: a retry recorded with it keeps its backoff, as it does there.
_RECOVERED = f"""
UPDATE pushes SET next_attempt_ms = $1
WHERE state = {PENDING} AND endpoint = ANY($2::text[]) AND attempts > 0
  AND next_attempt_ms > $1 AND id <> ALL($3::bigint[])
"""


# store/pushes.py ``_NEXT_OF_KEY``: the next push of each order key whose push of ``$4`` ended,
# leased to ``$1`` until ``$2`` when due and free at ``$3``. A claim of another worker that
# locked that row first makes this UPDATE wait for it and then see its lease (not free).
# ``t.state + 0``: not the partial indexes' predicate, so the rows are found by primary key;
# with ``state = 0`` and no statistics yet PostgreSQL read all pending rows from
# ``ix_pushes_due`` and filtered them by id (22 ms at 10,000 pending against 0.5 ms).
_NEXT_OF_KEY = f"""
UPDATE pushes AS t SET lease_owner = $1, lease_until_ms = $2
WHERE t.id = ANY(ARRAY(
    SELECT (SELECT n.id FROM pushes AS n
            WHERE n.state = {PENDING} AND n.endpoint = d.endpoint
              AND n.order_key = d.order_key
            ORDER BY n.endpoint, n.order_key, n.id LIMIT 1)
    FROM pushes AS d
    WHERE d.id = ANY($4::bigint[]) AND d.order_key IS NOT NULL AND d.state <> {PENDING}))
  AND t.state + 0 = {PENDING} AND t.next_attempt_ms <= $3
  AND (t.lease_until_ms IS NULL OR t.lease_until_ms < $3)
RETURNING {_RETURNED}
"""


async def record(
    conn: AsyncConnection,
    results: Sequence[AttemptResult],
    *,
    owner: str,
    now_ms: int,
    lease_until_ms: int | None = None,
) -> list[ClaimedPush]:
    """store/pushes.py ``record`` in one statement (two after a recovered endpoint), and with
    ``lease_until_ms`` one more for the next push of each order key that carries on."""
    if not results:
        return []
    ids = [r.push_id for r in results]
    arrays: list[list[Any]] = [
        ids,
        [r.outcome for r in results],
        [r.status for r in results],
        [(r.error or None) and str(r.error)[:255] for r in results],
        [r.next_attempt_ms for r in results],
    ]
    back = [str(e) for (e,) in await conn.exec_driver_sql(_RECORD, (now_ms, owner, *arrays))]
    if back:
        await conn.exec_driver_sql(_RECOVERED, (now_ms, back, ids))
    ended = [r.push_id for r in results if r.outcome in ENDED]
    if lease_until_ms is None or not ended:
        return []
    rows = await conn.exec_driver_sql(_NEXT_OF_KEY, (owner, lease_until_ms, now_ms, ended))
    return claimed_in_due_order(rows, lease_until_ms)
