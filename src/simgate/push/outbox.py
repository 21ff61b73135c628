"""The outbox hook: domain events → planned pushes → rows, in the transaction of the change.

Registered with ``store.add_event_hook`` by the runtime, so a push row exists exactly when
the state change that caused it is committed (issue #3 "Outbox"). The planners (one per
dialect, see push/base.py) choose endpoints and build requests; this module knows no format.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.domain.events import DomainEvent
from simgate.push.base import PlannedPush, PushPlanner
from simgate.services.pushes import insert_planned

log = logging.getLogger(__name__)


class Outbox:
    def __init__(self, planners: Sequence[PushPlanner], clock: Clock) -> None:
        self.planners = list(planners)
        self._clock = clock

    async def hook(self, conn: AsyncConnection, events: Sequence[DomainEvent]) -> None:
        if not self.planners or not events:
            return
        planned: list[PlannedPush] = []
        for planner in self.planners:
            # A planner's error aborts the transaction of the change, on purpose: a state
            # change must never commit without the pushes it owes (at-least-once).
            planned.extend(await planner.plan(conn, events))
        if planned:
            await insert_planned(conn, planned, now_ms=self._clock.now_ms())
