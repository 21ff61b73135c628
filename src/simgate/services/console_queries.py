"""What the web console reads (issue 19), account scope enforced here.

Every method takes ``scope``: None for the operator's users (every account), else the one
account a user may see. A record of another account is :class:`NotFound`, exactly like a
record that does not exist, so an id changed in a URL tells nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import astuple, dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.domain import ids
from simgate.domain.accounts import Account
from simgate.domain.calls import CallRecord
from simgate.domain.messages import State
from simgate.domain.records import InboundRecord, MessageRecord
from simgate.errors import NotFound
from simgate.lines.base import Line, PortInfo
from simgate.services.accounts import AccountService
from simgate.services.console_day import BUCKET_MS, FRESH_BUCKETS, DayChart, fresh_from
from simgate.services.pushes import PushService, PushView
from simgate.store import Store
from simgate.store import console_queries as q
from simgate.store import pushes as outbox
from simgate.store.console_queries import Buckets, MessageFilter, PortDay
from simgate.store.pushes import Attempt

__all__ = [
    "Buckets",
    "ConsoleQueries",
    "InboundDetail",
    "LineView",
    "MessageDetail",
    "MessageFilter",
    "Overview",
    "PortDay",
    "PushDetail",
]

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
PAGE = 50


@dataclass(frozen=True, slots=True)
class LineView:
    name: str
    capabilities: tuple[str, ...]
    ports: tuple[PortInfo, ...]
    # Messages sent over the last 60 s, the last 300 s and since this process started, and
    # those as rates per second (Kannel's admin page shows the same three).
    sent: tuple[int, int, int]
    rates: tuple[float, float, float]
    # Per port index: today's traffic and errors (the viewer's day, lines page only).
    today: dict[int, PortDay] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Overview:
    now_ms: int
    hour_start_ms: int
    day_start_ms: int
    hour: Buckets
    day: Buckets  # per 10 minutes
    delivery_rate: float | None  # delivered / (delivered + failed) over the last day
    queue_depth: int | None  # None for an account's user: the queue is the operator's
    oldest_queued_age_s: float | None
    pushes_pending: int
    pushes_dead: int
    calls: dict[str, int]
    accounts: list[Account]
    lines: list[LineView]


@dataclass(frozen=True, slots=True)
class MessageDetail:
    message: MessageRecord
    parts: list[dict[str, object]]
    # (state, when) for every state the message has been in, in time order.
    history: list[tuple[str, int]]
    pushes: list[PushView]


@dataclass(frozen=True, slots=True)
class InboundDetail:
    record: InboundRecord
    pushes: list[PushView]


@dataclass(frozen=True, slots=True)
class PushDetail:
    push: PushView
    attempts: list[Attempt]  # oldest first


DAY_BUCKET_MS = BUCKET_MS


def day_start(now_ms: int, tz: str) -> int:
    """The start of the day ``now_ms`` falls in, in zone ``tz``, as UTC epoch ms."""
    local = datetime.fromtimestamp(now_ms / 1000, tz=ZoneInfo(tz))
    return int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)


def _series(b: Buckets) -> tuple[list[int], ...]:
    return tuple(astuple(b))


class ConsoleQueries:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        accounts: AccountService,
        pushes: PushService,
        lines: dict[str, Line],
    ) -> None:
        self._store = store
        self._db = store.db
        self._clock = clock
        self._accounts = accounts
        self._pushes = pushes
        self._lines = lines
        self.started_ms = clock.now_ms()
        self._day = DayChart()
        # "Sent since start" per line for messages accepted before the last hour.
        self._settled_sent: dict[str, int] = {}
        self._settled_until_ms = self.started_ms
        self._settle_lock = asyncio.Lock()

    # ---- overview ----------------------------------------------------------------------
    async def overview(self, scope: int | None) -> Overview:
        """Everything on the overview, read on one connection (each query costs a thread
        hop with aiosqlite, so fewer, shared reads keep the page within its 100 ms)."""
        now = self._clock.now_ms()
        fresh_start = fresh_from(now)
        minutes = (now - fresh_start) // MINUTE_MS + 1  # 61..70, the newest in progress
        async with self._db.read() as conn:
            recent = await q.traffic(
                conn,
                account_id=scope,
                id_from=ids.lower_bound(fresh_start),
                start_ms=fresh_start,
                bucket_ms=MINUTE_MS,
                buckets=FRESH_BUCKETS * BUCKET_MS // MINUTE_MS,
            )
            day_start, day = await self._day.read(
                conn, scope=scope, now_ms=now, fresh_minutes=recent
            )
            calls = await q.calls_by_outcome(
                conn, account_id=scope, id_from=ids.lower_bound(now - DAY_MS)
            )
            depth = oldest = None
            # An account's user sees its own pushes' counts (pushes.account_id, 0014).
            pending, dead = await q.pushes_pending_dead(conn, account_id=scope)
            if scope is None:
                depth, first = await q.queue_now(conn)
                oldest = None if first is None else max(0, now - first) / 1000
                accounts = await self._store.accounts.list_accounts(conn)
                lines = await self._lines_on(conn, now)
            else:
                accounts, lines = [], []
        if scope is not None:
            accounts = [await self._accounts.get_account(scope)]
        hour = Buckets(*(series[minutes - 60 : minutes] for series in _series(recent)))
        hour_start = fresh_start + (minutes - 60) * MINUTE_MS
        delivered, failed = sum(day.delivered), sum(day.failed)
        rate = delivered / (delivered + failed) if delivered + failed else None
        return Overview(
            now, hour_start, day_start, hour, day, rate, depth, oldest, pending, dead, calls,
            accounts, lines,
        )  # fmt: skip

    async def accounts(self, scope: int | None) -> list[Account]:
        if scope is not None:
            return [await self._accounts.get_account(scope)]
        return await self._accounts.list_accounts()

    async def lines(self, *, tz: str = "UTC") -> list[LineView]:
        """Every line of this process with its ports, its send rates, and each port's
        traffic and errors since midnight in ``tz`` (the viewer's day)."""
        now = self._clock.now_ms()
        midnight = day_start(now, tz)
        async with self._db.read() as conn:
            out = await self._lines_on(conn, now)
            today = await q.port_day(conn, since_ms=midnight, id_from=ids.lower_bound(midnight))
        return [replace(v, today=today.get(v.name, {})) for v in out]

    async def _lines_on(self, conn: AsyncConnection, now: int) -> list[LineView]:
        # The last hour's messages are read each time (60 s and 300 s windows, and what is
        # still being sent); older ones are added to a running total per line once, as the
        # hour moves past them, so "since start" never re-reads the whole uptime. A message
        # sent over an hour after it was accepted is missed by that total.
        live_from = max(self.started_ms, now - HOUR_MS)
        async with self._settle_lock:
            if live_from > self._settled_until_ms:
                moved = await q.sent_by_line(
                    conn,
                    id_from=ids.lower_bound(self._settled_until_ms),
                    id_to=ids.lower_bound(live_from) - 1,
                    since_ms=(self.started_ms,),
                )
                for line_name, (older,) in moved.items():
                    self._settled_sent[line_name] = self._settled_sent.get(line_name, 0) + older
                self._settled_until_ms = live_from
            settled = dict(self._settled_sent)
        since = (now - 60_000, now - 300_000, self.started_ms)
        sent = await q.sent_by_line(conn, id_from=ids.lower_bound(live_from), since_ms=since)
        up_s = max(1.0, (now - self.started_ms) / 1000)
        out = []
        for name, line in sorted(self._lines.items()):
            n = sent.get(name, [0, 0, 0])
            counts = (n[0], n[1], n[2] + settled.get(name, 0))
            rates = (counts[0] / 60, counts[1] / 300, counts[2] / up_s)
            caps = tuple(sorted(c.value for c in line.capabilities))
            out.append(LineView(name, caps, tuple(line.ports()), counts, rates))
        return out

    # ---- messages ----------------------------------------------------------------------
    async def search_messages(
        self, scope: int | None, f: MessageFilter, *, before_id: int | None, limit: int = PAGE
    ) -> list[MessageRecord]:
        if scope is not None:
            f = replace(f, account_id=scope)
        elif f.number and f.account_id is None:
            f = replace(f, account_ids=await self._account_ids())
        async with self._db.read() as conn:
            return await q.search_messages(conn, f, before_id=before_id, limit=limit)

    async def message(self, scope: int | None, message_id: int) -> MessageDetail:
        async with self._db.read() as conn:
            found = await self._store.messages.get(conn, [message_id])
            if not found or (scope is not None and found[0].account_id != scope):
                raise NotFound(f"no message {message_id}")
            parts = await q.parts_of(conn, message_id)
            push_ids = await outbox.ids_about(conn, message_id)
        m = found[0]
        history = sorted(
            (
                (s.name, at)
                for s in State
                if (at := getattr(m, f"{s.name.lower()}_ms", None)) is not None
            ),
            key=lambda h: h[1],
        )
        return MessageDetail(m, parts, history, await self._pushes_of(scope, push_ids))

    async def _pushes_of(self, scope: int | None, push_ids: list[int]) -> list[PushView]:
        """The pushes ``scope`` may see: an account's user only its account's (a Dinstar push
        that batches several accounts' records is the operator's)."""
        out = [await self._pushes.get(str(i)) for i in push_ids]
        return [p for p in out if scope is None or p.account_id == scope]

    async def inbound(self, scope: int | None, inbound_id: int) -> InboundDetail:
        async with self._db.read() as conn:
            found = await q.get_inbound(conn, inbound_id)
            if found is None or (scope is not None and found.account_id != scope):
                raise NotFound(f"no incoming SMS {inbound_id}")
            push_ids = await outbox.ids_about(conn, inbound_id)
        return InboundDetail(found, await self._pushes_of(scope, push_ids))

    async def _account_ids(self) -> tuple[int, ...]:
        return tuple(a.id for a in await self._accounts.list_accounts())

    # ---- incoming SMS and calls ----------------------------------------------------------
    async def search_inbound(
        self, scope: int | None, *, number: str | None, before_id: int | None, limit: int = PAGE
    ) -> list[InboundRecord]:
        async with self._db.read() as conn:
            return await q.search_inbound(
                conn,
                account_id=scope,
                all_accounts=await self._account_ids() if scope is None and number else (),
                number=number,
                before_id=before_id,
                limit=limit,
            )

    async def search_calls(
        self, scope: int | None, *, number: str | None, before_id: int | None, limit: int = PAGE
    ) -> list[CallRecord]:
        async with self._db.read() as conn:
            return await q.search_calls(
                conn,
                account_id=scope,
                all_accounts=await self._account_ids() if scope is None and number else (),
                number=number,
                before_id=before_id,
                limit=limit,
            )

    async def call(self, scope: int | None, call_id: int) -> CallRecord:
        async with self._db.read() as conn:
            found = await q.get_call(conn, call_id)
        if found is None or (scope is not None and found.account_id != scope):
            raise NotFound(f"no call {call_id}")
        return found

    # ---- pushes ------------------------------------------------------------------------
    async def pushes_by_endpoint(self, scope: int | None) -> dict[str, dict[str, int]]:
        async with self._db.read() as conn:
            return await q.pushes_by_endpoint(conn, account_id=scope)

    async def push(self, scope: int | None, push_id: int) -> PushDetail:
        """One push and its attempts; another account's push is NotFound."""
        view = await self._pushes.get(str(push_id))
        if scope is not None and view.account_id != scope:
            raise NotFound(f"no push {push_id}")
        async with self._db.read() as conn:
            attempts = await outbox.attempts_of(conn, view.id)
        return PushDetail(view, attempts)
