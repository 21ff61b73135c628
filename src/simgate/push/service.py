"""What operators and the admin side may do with pushes (``Services.pushes``).

``validate_url`` is the configuration-time SSRF check (issue #3): call it before storing a
push URL. The rest backs ``simgate pushes list|show|retry|purge`` and the metrics.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from simgate.clock import Clock
from simgate.errors import InvalidInput, NotFound
from simgate.metrics import Metrics
from simgate.push import repo
from simgate.push.settings import PushSettings
from simgate.push.ssrf import UrlGuard
from simgate.push.tables import DEAD, DELIVERED, FAILED, PENDING, STATE_NAMES
from simgate.store import Database

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


def _view(row: dict[str, Any], now_ms: int) -> PushView:
    lease = row["lease_until_ms"]
    return PushView(
        id=int(row["id"]),
        uid=row["uid"],
        endpoint=row["endpoint"],
        kind=row["kind"],
        order_key=row["order_key"],
        method=row["method"],
        url=row["url"],
        headers=json.loads(row["headers_json"]),
        body=row["body"],
        signed=bool(row["signing_secret"]),
        state=STATE_NAMES[int(row["state"])],
        attempts=int(row["attempts"]),
        next_attempt_ms=int(row["next_attempt_ms"]),
        in_flight=row["state"] == PENDING and lease is not None and lease >= now_ms,
        last_status=row["last_status"],
        last_error=row["last_error"],
        created_ms=int(row["created_ms"]),
        updated_ms=int(row["updated_ms"]),
        done_ms=row["done_ms"],
    )


def parse_states(names: Sequence[str]) -> list[int]:
    try:
        return [STATES[n] for n in names]
    except KeyError as exc:
        raise InvalidInput(
            f"unknown push state {exc.args[0]!r} (one of {', '.join(STATES)})"
        ) from None


class PushService:
    def __init__(
        self,
        *,
        db: Database,
        settings: PushSettings,
        clock: Clock,
        metrics: Metrics,
        guard: UrlGuard,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.guard = guard

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
    ) -> list[PushView]:
        codes = parse_states(states)
        async with self.db.read() as conn:
            rows = await repo.page(
                conn, states=codes, endpoint=endpoint, kind=kind, limit=limit, offset=offset
            )
        now = self.clock.now_ms()
        return [_view(r, now) for r in rows]

    async def get(self, ref: str) -> PushView:
        async with self.db.read() as conn:
            row = await repo.get(conn, ref)
        if row is None:
            raise NotFound(f"no push {ref}")
        return _view(row, self.clock.now_ms())

    async def retry(
        self, *, ids: Sequence[int] = (), states: Sequence[str] = (), endpoint: str | None = None
    ) -> int:
        """Queue failed or dead pushes again (all of them, or these ids / this endpoint)."""
        codes = parse_states(states) or [FAILED, DEAD]
        if any(c in (PENDING, DELIVERED) for c in codes):
            raise InvalidInput("only failed or dead pushes can be retried")
        return await self.db.write(
            functools.partial(
                repo.requeue,
                now_ms=self.clock.now_ms(),
                ids=list(ids),
                states=codes,
                endpoint=endpoint,
            )
        )

    async def purge(self, *, states: Sequence[str], older_than_seconds: float) -> int:
        codes = parse_states(states)
        if PENDING in codes:
            raise InvalidInput("pending pushes cannot be purged")
        cutoff = self.clock.now_ms() - int(older_than_seconds * 1000)
        return await self.db.write(
            functools.partial(repo.purge, states=codes, older_than_ms=cutoff)
        )

    async def stats(self) -> repo.PushStats:
        async with self.db.read() as conn:
            return await repo.stats(conn, now_ms=self.clock.now_ms())

    async def pending_by_endpoint(self) -> dict[str, int]:
        async with self.db.read() as conn:
            return await repo.pending_by_endpoint(conn)

    async def refresh_metrics(self) -> repo.PushStats:
        s = await self.stats()
        set_gauges(self.metrics, s, self.clock.now_ms())
        return s


def set_gauges(metrics: Metrics, s: repo.PushStats, now_ms: int) -> None:
    metrics.push_pending.set(s.pending)
    metrics.push_dead.set(s.dead)
    age = 0.0 if s.oldest_pending_ms is None else max(0, now_ms - s.oldest_pending_ms) / 1000
    metrics.push_oldest_pending_age.set(age)
