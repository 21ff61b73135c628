"""The push outbox table, on the shared ``metadata`` (migration 0002_push).

One row per push: the complete request (method, URL, headers, body), where it goes
(``endpoint`` = scheme://host:port, the unit of per-endpoint queues), its order key, and its
delivery bookkeeping. A row is PENDING until it is delivered, fails for good, or is
dead-lettered. A row is *in flight* while ``lease_until_ms`` lies in the future; an expired
lease (a worker died mid-send) makes it claimable again: pushes are at-least-once.
"""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Iterable, Sequence
from typing import Any

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
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.pushes import ClaimedPush
from simgate.store.tables import metadata

PENDING = 0
DELIVERED = 1
FAILED = 2  # a permanent refusal (4xx other than 408/425/429, a refused URL)
DEAD = 3  # retried past push.give_up_after_seconds: dead-lettered, visible, retryable by hand

STATE_NAMES = {PENDING: "pending", DELIVERED: "delivered", FAILED: "failed", DEAD: "dead"}
# The attempt outcomes after which a push is no longer pending: the next push of its order
# key may go (store/pushes.py and store/push_pg.py ``record``).
ENDED = frozenset({"delivered", "failed", "dead"})

pushes = Table(
    "pushes",
    metadata,
    # SQLite only auto-increments an INTEGER PRIMARY KEY; the id gives the planned order.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    # Standard Webhooks ``webhook-id``: stable across retries.
    Column("uid", String(40), nullable=False, unique=True),
    Column("endpoint", String(300), nullable=False),
    Column("order_key", String(128), nullable=True),
    Column("kind", String(64), nullable=False, server_default=""),
    Column("method", String(8), nullable=False),
    Column("url", Text, nullable=False),
    Column("headers_json", Text, nullable=False, server_default="{}"),
    Column("body", LargeBinary, nullable=True),
    Column("signing_secret", Text, nullable=True),
    Column("state", SmallInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until_ms", BigInteger, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", String(255), nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    # Start of the current retry period: created_ms, or when an operator retried it by hand.
    Column("since_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("done_ms", BigInteger, nullable=True),
    # The account the push reports to (migration 0014, issue 19): the account of the message,
    # incoming SMS or call it is about; None for the operator's own pushes (a Dinstar push
    # mixing accounts, a port's registration). The console scopes pushes by it.
    Column("account_id", Integer, nullable=True),
)


def _only(state: int, name: str, *columns: Column[Any]) -> Index:
    """An index of the rows in ``state`` only (partial: the claim's and the dead-letter
    view's conditions write the state as a literal, so both backends use it)."""
    where = pushes.c.state == state
    return Index(name, *columns, sqlite_where=where, postgresql_where=where)


# The claim: pending rows by due time.
_only(PENDING, "ix_pushes_due", pushes.c.next_attempt_ms, pushes.c.id)
# The claim while an endpoint's window is full: pending rows endpoint by endpoint, each in due
# order, so the full endpoints' rows are never read (migration 0015).
_only(PENDING, "ix_pushes_endpoint_due", pushes.c.endpoint, pushes.c.next_attempt_ms, pushes.c.id)
# Ordering: "is an earlier push of this (endpoint, order_key) still pending?"
_only(PENDING, "ix_pushes_order", pushes.c.endpoint, pushes.c.order_key, pushes.c.id)
# The dead-letter view. (No plain index on state: without ANALYZE statistics SQLite then
# chose it for the claim's ordering check and scanned every pending row.)
_only(DEAD, "ix_pushes_dead", pushes.c.id)
# An account's pushes, newest first (the console's account-scoped push pages).
Index("ix_pushes_account", pushes.c.account_id, pushes.c.id)

# Every attempt's outcome (migration 0014, issue 19: "one request's attempts with status and
# error"), written with the batch of outcomes that updates ``pushes`` (one statement more).
push_attempts = Table(
    "push_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("push_id", BigInteger, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("status", Integer, nullable=True),
    Column("error", String(255), nullable=True),
)
Index("ix_push_attempts_push", push_attempts.c.push_id, push_attempts.c.id)

# Which records (messages, incoming SMS: one id space, domain/ids.py) a push reports on: a
# message's page lists its pushes, whatever their order key; a Dinstar push batches up to
# 100 messages under one key (migration 0014, issue 19).
push_subjects = Table(
    "push_subjects",
    metadata,
    Column("record_id", BigInteger, primary_key=True, autoincrement=False),
    Column("push_id", BigInteger, primary_key=True, autoincrement=False),
)


# The claim while an endpoint's window is full goes endpoint by endpoint only while no more
# than this many endpoints have pending pushes (store/pushes.py, store/push_pg.py): it costs
# an index seek and a read per pending endpoint, so with thousands of them waiting it cost
# more than the walk of ``ix_pushes_due`` past the full endpoints' rows, which it takes then
# (bench/push_claim.py, "endpoints due" rows).
ENDPOINTS_SCANNED = 64


# A claim's ``UPDATE ... RETURNING`` row, its columns in this order (store/pushes.py,
# store/push_pg.py): what :func:`claimed_in_due_order` reads, by name, from a driver's plain
# tuple too (``ClaimedRow._make``).
ClaimedRow = namedtuple(
    "ClaimedRow",
    [
        "id", "uid", "endpoint", "kind", "method", "url", "headers_json", "body",
        "signing_secret", "attempts", "since_ms", "next_attempt_ms",
    ],
)  # fmt: skip
CLAIMED_COLUMNS: tuple[str, ...] = ClaimedRow._fields


def claimed_in_due_order(rows: Iterable[Any], lease_until_ms: int) -> list[ClaimedPush]:
    """The rows a claim's ``UPDATE ... RETURNING`` leased, as the sender's pushes, in due order
    (RETURNING has none: the sender starts its attempts in the order it gets them)."""
    return [
        ClaimedPush(
            id=r.id,
            uid=r.uid,
            endpoint=r.endpoint,
            kind=r.kind,
            method=r.method,
            url=r.url,
            headers=json.loads(r.headers_json),
            body=r.body,
            signing_secret=r.signing_secret,
            attempts=r.attempts,
            since_ms=r.since_ms,
            lease_until_ms=lease_until_ms,
        )
        for r in sorted(rows, key=lambda r: (r.next_attempt_ms, r.id))
    ]


# The endpoints with pending pushes, up to ``:n`` + 1 of them: one index seek each (a loose
# scan of ``ix_pushes_endpoint_due``, which neither database does by itself).
_PENDING_ENDPOINTS = f"""
WITH RECURSIVE endpoints(ep, n) AS (
    SELECT min(endpoint), 1 FROM pushes WHERE state = {PENDING}
    UNION ALL
    SELECT (SELECT min(p.endpoint) FROM pushes AS p
            WHERE p.state = {PENDING} AND p.endpoint > endpoints.ep), endpoints.n + 1
    FROM endpoints WHERE endpoints.ep IS NOT NULL AND endpoints.n <= :n
)
SELECT ep FROM endpoints WHERE ep IS NOT NULL
"""


async def open_endpoints(
    conn: AsyncConnection, full: Sequence[str], scanned: int
) -> list[str] | None:
    """The endpoints with pending pushes other than ``full``, or None when more than
    ``scanned`` endpoints have pending pushes (then the claim walks the due index: see
    ``ENDPOINTS_SCANNED``)."""
    if scanned <= 0:
        return None
    found = [str(ep) for (ep,) in await conn.execute(text(_PENDING_ENDPOINTS), {"n": scanned})]
    if len(found) > scanned:
        return None
    skip = set(full)
    return [ep for ep in found if ep not in skip]
