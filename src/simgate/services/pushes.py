"""The push outbox as a service: operators' operations, the URL check, the sender's queue.

- :class:`PushService` (``Services.pushes``): ``validate_url`` is the configuration-time SSRF
  check (call it before storing a push URL); the rest backs
  ``simgate pushes list|show|retry|purge|stats`` and the push gauges of ``/metrics``.
- :class:`OutboxQueue`: the outbox table as the sender's queue (``push.sender.PushQueue``):
  claim due pushes, record attempt outcomes, refresh the gauges.
- :func:`insert_planned`: planned pushes become outbox rows inside the caller's transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.domain.events import CallFinished, DomainEvent, InboundReceived, MessageChanged
from simgate.domain.pushes import AttemptResult, ClaimedPush
from simgate.errors import InvalidInput, NotFound
from simgate.lease_loop import PUSHES, Wakeup
from simgate.metrics import Metrics
from simgate.push.base import PlannedPush
from simgate.push.settings import PushSettings
from simgate.push.ssrf import UnsafeUrl, UrlGuard, parse_url
from simgate.store import Database
from simgate.store import pushes as outbox
from simgate.store.push_tables import DEAD, DELIVERED, FAILED, PENDING, STATE_NAMES
from simgate.store.pushes import NewPush, PushRow, PushStats

__all__ = [
    "OutboxQueue",
    "PushService",
    "PushStats",
    "PushView",
    "endpoint_of",
    "insert_planned",
    "parse_states",
    "set_gauges",
]

STATES = {name: code for code, name in STATE_NAMES.items()}


@dataclass(frozen=True, slots=True)
class PushView:
    id: int
    uid: str
    endpoint: str
    kind: str
    order_key: str | None
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    signed: bool
    state: str
    attempts: int
    next_attempt_ms: int
    in_flight: bool
    last_status: int | None
    last_error: str | None
    created_ms: int
    updated_ms: int
    done_ms: int | None
    account_id: int | None = None


def _view(row: PushRow, now_ms: int) -> PushView:
    lease = row.lease_until_ms
    return PushView(
        id=row.id,
        uid=row.uid,
        endpoint=row.endpoint,
        kind=row.kind,
        order_key=row.order_key,
        method=row.method,
        url=row.url,
        headers=row.headers,
        body=row.body,
        signed=bool(row.signing_secret),
        state=STATE_NAMES[row.state],
        attempts=row.attempts,
        next_attempt_ms=row.next_attempt_ms,
        in_flight=row.state == PENDING and lease is not None and lease >= now_ms,
        last_status=row.last_status,
        last_error=row.last_error,
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
        done_ms=row.done_ms,
        account_id=row.account_id,
    )


def parse_states(names: Sequence[str]) -> list[int]:
    try:
        return [STATES[n] for n in names]
    except KeyError as exc:
        raise InvalidInput(
            f"unknown push state {exc.args[0]!r} (one of {', '.join(STATES)})"
        ) from None


def endpoint_of(url: str) -> str:
    """The per-endpoint queue a URL belongs to (scheme://host:port); unparsable URLs get one
    queue of their own, and fail when sent."""
    try:
        return parse_url(url).endpoint
    except UnsafeUrl:
        return "invalid:"


# What a per-record order key names: the record a push reports on (None for a call: no page
# lists a call's pushes) and that record's account.
Named = tuple[int | None, int]


def _records(events: Sequence[DomainEvent]) -> tuple[dict[str, Named], dict[int, int]]:
    """From the events that planned the pushes: what each per-record order key names
    (``msg:<id>``: a message, or an incoming SMS for itniotech's MO push; ``inbound:<id>``;
    ``call:<id>``), and the account of every message and incoming SMS."""
    keyed: dict[str, Named] = {}
    account: dict[int, int] = {}
    for e in events:
        if isinstance(e, MessageChanged | InboundReceived):
            rec = e.record
            keyed[f"msg:{rec.id}"] = (rec.id, rec.account_id)
            if isinstance(e, InboundReceived):
                keyed[f"inbound:{rec.id}"] = (rec.id, rec.account_id)
            account[rec.id] = rec.account_id
        elif isinstance(e, CallFinished):
            keyed[f"call:{e.record.id}"] = (None, e.record.account_id)
    return keyed, account


def _owned(p: PlannedPush, keyed: dict[str, Named], account: dict[int, int]) -> NewPush:
    subjects: tuple[int, ...] = p.subjects
    owners = {account.get(r) for r in subjects}
    if not subjects and p.order_key in keyed:
        record, owner = keyed[p.order_key]
        subjects, owners = (() if record is None else (record,)), {owner}
    return NewPush(
        endpoint=endpoint_of(p.request.url),
        order_key=p.order_key,
        kind=p.kind,
        method=p.request.method,
        url=p.request.url,
        headers=p.request.headers,
        body=p.request.body,
        signing_secret=p.signing_secret,
        # One account's records: that account's push; several (a Dinstar batch), or none
        # (a port's registration): the operator's.
        account_id=owners.pop() if len(owners) == 1 else None,
        subjects=subjects,
    )


async def insert_planned(
    conn: AsyncConnection,
    planned: Sequence[PlannedPush],
    *,
    now_ms: int,
    events: Sequence[DomainEvent] = (),
) -> list[str]:
    """Outbox rows for ``planned`` in the caller's transaction, in order; their webhook ids.
    ``events`` (those that planned them) give each its account and subjects (issue 19)."""
    if events:
        keyed, account = _records(events)
        return await outbox.insert_planned(
            conn, [_owned(p, keyed, account) for p in planned], now_ms=now_ms
        )
    rows = [
        NewPush(
            endpoint=endpoint_of(p.request.url),
            order_key=p.order_key,
            kind=p.kind,
            method=p.request.method,
            url=p.request.url,
            headers=p.request.headers,
            body=p.request.body,
            signing_secret=p.signing_secret,
        )
        for p in planned
    ]
    return await outbox.insert_planned(conn, rows, now_ms=now_ms)


def set_gauges(metrics: Metrics, s: PushStats, now_ms: int) -> None:
    metrics.push_pending.set(s.pending)
    metrics.push_dead.set(s.dead)
    age = 0.0 if s.oldest_pending_ms is None else max(0, now_ms - s.oldest_pending_ms) / 1000
    metrics.push_oldest_pending_age.set(age)


class OutboxQueue:
    """The outbox table as the sender's queue (implements ``push.sender.PushQueue``)."""

    def __init__(self, *, db: Database, metrics: Metrics) -> None:
        self._db = db
        self._metrics = metrics

    async def claim(
        self,
        *,
        owner: str,
        now_ms: int,
        lease_until_ms: int,
        limit: int,
        window: int,
        busy: Mapping[str, int],
    ) -> list[ClaimedPush]:
        """Lease up to ``limit`` due pushes, at most ``window - busy[endpoint]`` per endpoint."""
        return await self._db.write(
            functools.partial(
                outbox.claim,
                owner=owner,
                now_ms=now_ms,
                lease_until_ms=lease_until_ms,
                limit=limit,
                window=window,
                busy=dict(busy),
            )
        )

    async def record(
        self,
        results: Sequence[AttemptResult],
        *,
        owner: str,
        now_ms: int,
        lease_until_ms: int | None = None,
    ) -> list[ClaimedPush]:
        """Apply attempt outcomes (group commit: one transaction for the batch); with
        ``lease_until_ms``, lease and return the next push of each order key that ended."""
        return await self._db.write(
            functools.partial(
                outbox.record,
                results=list(results),
                owner=owner,
                now_ms=now_ms,
                lease_until_ms=lease_until_ms,
            )
        )

    async def renew(self, ids: Sequence[int], *, owner: str, lease_until_ms: int) -> None:
        """Extend ``owner``'s leases of the pending rows ``ids`` (one transaction)."""
        await self._db.write(
            functools.partial(
                outbox.renew, ids=list(ids), owner=owner, lease_until_ms=lease_until_ms
            )
        )

    async def refresh_gauges(self, *, now_ms: int) -> None:
        """Pending and dead counts and the oldest pending age; skips counting delivered and
        failed rows (a scan of the whole table)."""
        async with self._db.read() as conn:
            s = await outbox.stats(conn, now_ms=now_ms, finished=False)
        set_gauges(self._metrics, s, now_ms)


class PushService:
    def __init__(
        self,
        *,
        db: Database,
        settings: PushSettings,
        clock: Clock,
        metrics: Metrics,
        guard: UrlGuard,
        wakeup: Wakeup | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.guard = guard
        self.queue = OutboxQueue(db=db, metrics=metrics)
        self._wakeup = wakeup or Wakeup()

    async def validate_url(self, url: str) -> None:
        """Refuse a push URL that is malformed or reaches a blocked address (UnsafeUrl)."""
        await self.guard.check(url)

    async def list(
        self,
        *,
        states: Sequence[str] = (),
        endpoint: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        offset: int = 0,
        account_id: int | None = None,
    ) -> list[PushView]:
        codes = parse_states(states)
        async with self.db.read() as conn:
            rows = await outbox.page(
                conn,
                states=codes,
                endpoint=endpoint,
                kind=kind,
                limit=limit,
                offset=offset,
                account_id=account_id,
            )
        now = self.clock.now_ms()
        return [_view(r, now) for r in rows]

    async def get(self, ref: str) -> PushView:
        async with self.db.read() as conn:
            row = await outbox.get(conn, ref)
        if row is None:
            raise NotFound(f"no push {ref}")
        return _view(row, self.clock.now_ms())

    async def retry(
        self,
        *,
        ids: Sequence[int] = (),
        states: Sequence[str] = (),
        endpoint: str | None = None,
        account_id: int | None = None,
    ) -> int:
        """Queue failed or dead pushes again (all of them, or these ids / this endpoint)."""
        codes = parse_states(states) or [FAILED, DEAD]
        if any(c in (PENDING, DELIVERED) for c in codes):
            raise InvalidInput("only failed or dead pushes can be retried")
        requeued: int = await self.db.write(
            functools.partial(
                outbox.requeue,
                now_ms=self.clock.now_ms(),
                ids=list(ids),
                states=codes,
                endpoint=endpoint,
                account_id=account_id,
            )
        )
        if requeued:  # due now: the senders stop idling (here, and the relays: issue 15)
            self._wakeup.notify(PUSHES)
        return requeued

    async def purge(self, *, states: Sequence[str], older_than_seconds: float) -> int:
        codes = parse_states(states)
        if PENDING in codes:
            raise InvalidInput("pending pushes cannot be purged")
        cutoff = self.clock.now_ms() - int(older_than_seconds * 1000)
        return await self.db.write(
            functools.partial(outbox.purge, states=codes, older_than_ms=cutoff)
        )

    async def stats(self) -> PushStats:
        async with self.db.read() as conn:
            return await outbox.stats(conn, now_ms=self.clock.now_ms())

    async def pending_by_endpoint(self) -> dict[str, int]:
        async with self.db.read() as conn:
            return await outbox.pending_by_endpoint(conn)

    async def refresh_metrics(self) -> PushStats:
        s = await self.stats()
        set_gauges(self.metrics, s, self.clock.now_ms())
        return s
