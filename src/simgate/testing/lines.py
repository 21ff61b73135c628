"""Shipped fakes for the line seam: a line with named, scripted behaviours and a recording sink.

``ScriptedLine.throttles(after=3)`` takes three messages and then answers "later" forever;
``ScriptedLine.outcomes(Outcome.RETRY, Outcome.OK)`` answers in that order (the last repeats).
``ScriptedLine.held()`` takes every message but answers none until the test calls ``release()``.
Every request is kept in ``submits`` so tests can check port, text and order. Nothing here
sleeps or reads a clock: time belongs to the test (design principle 6: named fakes, no mocks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypedDict, Unpack

from simgate.lines.base import (
    Capability,
    InboundSink,
    IncomingPart,
    IncomingSms,
    LineReport,
    Outcome,
    PortInfo,
    SubmitRequest,
    SubmitResult,
)

Script = Callable[["ScriptedLine", SubmitRequest], SubmitResult]


class LineOptions(TypedDict, total=False):
    name: str
    ports: int
    exclusive: bool
    port_rate_per_minute: int


class ScriptedError(RuntimeError):
    """What ``ScriptedLine.raises()`` raises: a driver bug, as far as the dispatcher knows."""


class ScriptedLine:
    capabilities = frozenset({Capability.SMS, Capability.REPORTS, Capability.INBOUND})

    def __init__(
        self,
        script: Script,
        *,
        name: str = "scripted",
        ports: int = 2,
        exclusive: bool = False,
        port_rate_per_minute: int = 0,
    ) -> None:
        self.name = name
        self.exclusive = exclusive
        self.port_rate_per_minute = port_rate_per_minute
        self._script = script
        self._ports = [
            PortInfo(
                i, f"gsm-1.{i + 1}", f"46000{i:010d}", f"8986{i:016d}", f"1555{i:07d}", 20, True
            )
            for i in range(ports)
        ]
        self.submits: list[SubmitRequest] = []
        self.sink: InboundSink | None = None
        self.started = False
        # Set by held(): submits wait on it (the line is slow to answer, for as long as the
        # test wants).
        self._gate: asyncio.Event | None = None

    # ---- named behaviours ------------------------------------------------------------
    @classmethod
    def accepts(cls, **kw: Unpack[LineOptions]) -> ScriptedLine:
        """Takes every message: OK with one ref per part (``<line>:<id>.<part>``)."""
        return cls(lambda line, req: line.ok(req), **kw)

    @classmethod
    def throttles(
        cls, *, after: int, retry_after_s: float | None = None, **kw: Unpack[LineOptions]
    ) -> ScriptedLine:
        """Takes ``after`` messages, then answers RETRY (as an SMSC answering ESME_RTHROTTLED)."""

        def script(line: ScriptedLine, req: SubmitRequest) -> SubmitResult:
            if len(line.submits) <= after:
                return line.ok(req)
            return SubmitResult(Outcome.RETRY, error_text="throttled", retry_after_s=retry_after_s)

        return cls(script, **kw)

    @classmethod
    def outcomes(cls, *outcomes: Outcome, **kw: Unpack[LineOptions]) -> ScriptedLine:
        """Answers with ``outcomes`` in order, one per submit; the last one repeats."""
        if not outcomes:
            raise ValueError("at least one outcome")

        def script(line: ScriptedLine, req: SubmitRequest) -> SubmitResult:
            outcome = outcomes[min(len(line.submits), len(outcomes)) - 1]
            if outcome is Outcome.OK:
                return line.ok(req)
            return SubmitResult(outcome, error_code=65 if outcome is Outcome.REJECTED else None)

        return cls(script, **kw)

    @classmethod
    def held(cls, **kw: Unpack[LineOptions]) -> ScriptedLine:
        """Takes every message (as ``accepts``), answering only once ``release()`` is called."""
        line = cls(lambda line, req: line.ok(req), **kw)
        line._gate = asyncio.Event()
        return line

    def release(self) -> None:
        """Let held submits answer (and every later one at once)."""
        assert self._gate is not None, "only a held() line is released"
        self._gate.set()

    @classmethod
    def raises(cls, **kw: Unpack[LineOptions]) -> ScriptedLine:
        """A driver bug: ``submit`` raises."""

        def script(line: ScriptedLine, req: SubmitRequest) -> SubmitResult:
            raise ScriptedError("driver bug")

        return cls(script, **kw)

    # ---- the Line protocol -----------------------------------------------------------
    def ports(self) -> Sequence[PortInfo]:
        return tuple(self._ports)

    async def start(self, sink: InboundSink) -> None:
        self.sink = sink
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        self.submits.append(request)
        if self._gate is not None:
            await self._gate.wait()
        return self._script(self, request)

    # ---- helpers for scripts and tests -----------------------------------------------
    def ok(self, req: SubmitRequest) -> SubmitResult:
        return SubmitResult(Outcome.OK, part_refs=self.refs(req.message_id, req.parts), first_ref=1)

    def refs(self, message_id: int, parts: int = 1) -> tuple[str, ...]:
        return tuple(f"{self.name}:{message_id}.{i}" for i in range(parts))

    def set_port(
        self, index: int, *, registered: bool | None = None, locked: bool | None = None
    ) -> None:
        p = self._ports[index]
        self._ports[index] = replace(
            p,
            registered=p.registered if registered is None else registered,
            locked=p.locked if locked is None else locked,
        )

    async def report(
        self, message_id: int, code: int = 0, *, parts: int = 1, at_ms: int = 0
    ) -> None:
        """Hand in delivery reports for every part of a message the line took."""
        assert self.sink is not None, "line not started"
        reports = [LineReport(ref, code, at_ms) for ref in self.refs(message_id, parts)]
        await self.sink.delivery_reports(self.name, reports)


@dataclass
class RecordingSink:
    """An :class:`~simgate.lines.base.InboundSink` that keeps what lines hand in."""

    reports: list[tuple[str, LineReport]] = field(default_factory=list)
    incoming_sms: list[tuple[str, IncomingSms]] = field(default_factory=list)
    port_changes: list[tuple[str, int, bool]] = field(default_factory=list)
    parts: list[tuple[str, IncomingPart]] = field(default_factory=list)
    parts_due: list[tuple[str, int]] = field(default_factory=list)

    async def delivery_reports(self, line: str, reports: Sequence[LineReport]) -> None:
        self.reports.extend((line, r) for r in reports)

    async def incoming(self, line: str, messages: Sequence[IncomingSms]) -> None:
        self.incoming_sms.extend((line, m) for m in messages)

    async def incoming_parts(self, line: str, parts: Sequence[IncomingPart]) -> None:
        self.parts.extend((line, p) for p in parts)

    async def expire_parts(self, line: str, *, started_before_ms: int) -> None:
        self.parts_due.append((line, started_before_ms))

    async def port_changed(self, line: str, port: int, up: bool) -> None:
        self.port_changes.append((line, port, up))
