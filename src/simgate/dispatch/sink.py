"""What lines hand in (reports, incoming SMS, port changes), committed through the store."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence

from simgate.clock import Clock
from simgate.lines.base import IncomingSms, LineReport
from simgate.metrics import Metrics
from simgate.store import Store
from simgate.store.messages import PartReport

IncomingHandler = Callable[[str, Sequence[IncomingSms]], Awaitable[None]]
PortHandler = Callable[[str, int, bool], Awaitable[None]]


class StoreSink:
    """The dispatcher's :class:`~simgate.lines.base.InboundSink`.

    Reports go straight to the store (group commit batches concurrent callers). Incoming SMS
    and port changes are use cases of their own and go to the handlers the runtime gives.
    """

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        metrics: Metrics,
        on_incoming: IncomingHandler,
        on_port: PortHandler,
    ) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._on_incoming = on_incoming
        self._on_port = on_port

    async def delivery_reports(self, line: str, reports: Sequence[LineReport]) -> None:
        parts = [PartReport(line, r.line_ref, r.status_code, r.done_ms) for r in reports]
        job = functools.partial(
            self._store.messages.record_reports, reports=parts, now_ms=self._clock.now_ms()
        )
        await self._store.db.write(job)
        ok = sum(1 for r in reports if r.status_code == 0)
        self._metrics.reports.labels(line, "delivered").inc(ok)
        self._metrics.reports.labels(line, "failed").inc(len(reports) - ok)

    async def incoming(self, line: str, messages: Sequence[IncomingSms]) -> None:
        await self._on_incoming(line, messages)
        self._metrics.incoming.labels(line).inc(len(messages))

    async def port_changed(self, line: str, port: int, up: bool) -> None:
        await self._on_port(line, port, up)
