"""What lines hand in (reports, incoming SMS, port changes), handed to the services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from simgate.clock import Clock
from simgate.dispatch.report_hold import ReportHold
from simgate.domain.queue import PartReport
from simgate.lines.base import IncomingPart, IncomingSms, LineReport
from simgate.metrics import Metrics
from simgate.services.messaging import MessagingService

IncomingHandler = Callable[[str, Sequence[IncomingSms]], Awaitable[None]]
# Parts in; the ids of the messages they completed out (the same for parts that waited).
PartsHandler = Callable[[str, Sequence[IncomingPart]], Awaitable[Sequence[int]]]
PartsDueHandler = Callable[[str, int], Awaitable[Sequence[int]]]
PortHandler = Callable[[str, int, bool], Awaitable[None]]


class LineSink:
    """The dispatcher's :class:`~simgate.lines.base.InboundSink`.

    Reports go to the messaging service (group commit batches concurrent callers). Incoming
    SMS and port changes are use cases of their own and go to the handlers the runtime gives.
    """

    def __init__(
        self,
        *,
        messaging: MessagingService,
        clock: Clock,
        metrics: Metrics,
        on_incoming: IncomingHandler,
        on_parts: PartsHandler,
        on_parts_due: PartsDueHandler,
        on_port: PortHandler,
        hold: ReportHold | None = None,
    ) -> None:
        self._messaging = messaging
        self._hold = hold
        self._clock = clock
        self._metrics = metrics
        self._on_incoming = on_incoming
        self._on_parts = on_parts
        self._on_parts_due = on_parts_due
        self._on_port = on_port

    async def delivery_reports(self, line: str, reports: Sequence[LineReport]) -> None:
        # Positional (line, line_ref, status_code, done_ms, hint): one per part, and by
        # keyword a NamedTuple costs 0.25 µs more to build (issue 15).
        parts = [PartReport(line, r.line_ref, r.status_code, r.done_ms, r.hint) for r in reports]
        held = None
        if self._hold is not None:  # reports of submits the dispatcher has yet to record
            parts, held = self._hold.hold(parts)
        if parts:
            await self._messaging.record_reports(parts, now_ms=self._clock.now_ms())
        if held is not None:
            await held  # committed with their submit's record (dispatch/report_hold.py)
        ok = sum(1 for r in reports if r.status_code == 0)
        self._metrics.reports.labels(line, "delivered").inc(ok)
        self._metrics.reports.labels(line, "failed").inc(len(reports) - ok)

    async def incoming(self, line: str, messages: Sequence[IncomingSms]) -> None:
        await self._on_incoming(line, messages)
        self._metrics.incoming.labels(line).inc(len(messages))

    async def incoming_parts(self, line: str, parts: Sequence[IncomingPart]) -> None:
        stored = await self._on_parts(line, parts)
        self._metrics.incoming.labels(line).inc(len(stored))

    async def expire_parts(self, line: str, *, started_before_ms: int) -> None:
        stored = await self._on_parts_due(line, started_before_ms)
        self._metrics.incoming.labels(line).inc(len(stored))

    async def port_changed(self, line: str, port: int, up: bool) -> None:
        await self._on_port(line, port, up)
