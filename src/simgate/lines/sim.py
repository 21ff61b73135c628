"""The simulated line: N SIM ports that accept, fail and deliver by configurable ratios.

Every outcome is a pure function of (seed, message id), so a run is reproducible whatever
the order in which messages arrive; time comes from the injected clock.

The journal (optional) is the simulated SMSC's memory, an append-only text file:
``S <id> <parts> <code|-> <lease_seq> <port>`` when the line takes a message and ``A <ref>``
once a part's report is committed by simgate. On start, reports that were never acknowledged
are sent again, as a real SMSC redelivers an unanswered deliver_sm. Crash tests read the ``S``
lines to prove that nothing was submitted twice. An entry a kill cut short is ended with ``~``
on the next start and never replayed (lines/journal_file.py): its last field may be cut.

Every report carries the hint of its submit (message id, lease, part): the journal knows them,
so a report settles its message even when simgate died before recording the submit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from simgate.clock import Clock
from simgate.domain.queue import ReportHint
from simgate.lease_loop import FailureRun
from simgate.lines import journal_file
from simgate.lines.base import (
    BatchMarks,
    Capability,
    InboundSink,
    IncomingSms,
    LineReport,
    Outcome,
    PortAction,
    PortInfo,
    SubmitRequest,
    SubmitResult,
    UssdResult,
    UssdStatus,
)
from simgate.settings import SimLineSettings

log = logging.getLogger(__name__)

# Status codes for reports, in the 0..255 space Dinstar exposes (TP-Status, TS 23.040 §9.2.3.15).
DELIVERED = 0
UNDELIVERABLE = 65  # 0x41 "incompatible destination" family: permanent error
REDELIVER_MS = 1000  # a report the sink refused is offered again after this long
REPORTS_PER_CALL = 2000  # reports handed to the sink in one call, at most


def _unit(seed: int, message_id: int, salt: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, message id, salt)."""
    digest = hashlib.blake2b(f"{seed}:{message_id}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _below(ratio: float, seed: int, message_id: int, salt: str) -> bool:
    """``_unit(...) < ratio``, without the hash where the ratio decides alone (0 or 1: the
    defaults, where a blake2b per message and outcome decided nothing; issue 15)."""
    if ratio <= 0.0:
        return False
    if ratio >= 1.0:
        return True  # _unit is below 1
    return _unit(seed, message_id, salt) < ratio


@dataclass(order=True)
class _Due:
    due_ms: int
    seq: int
    reports: list[LineReport] = field(compare=False)


class SimLine:
    capabilities = frozenset(
        {
            Capability.SMS,
            Capability.REPORTS,
            Capability.INBOUND,
            Capability.USSD,
            Capability.PORT_CONTROL,
            Capability.WRITE_MARKS,
        }
    )

    def __init__(self, name: str, settings: SimLineSettings, clock: Clock) -> None:
        self.name = name
        self.exclusive = settings.exclusive
        self.port_rate_per_minute = settings.port_rate_per_minute
        self._cfg = settings
        self._clock = clock
        self._ports = [self._make_port(i) for i in range(settings.ports)]
        self._mr = [0] * settings.ports  # per-port TP-MR counter, 0..255 (TS 23.040 §9.2.3.6)
        self._sink: InboundSink | None = None
        self._due: list[_Due] = []
        self._seq = 0
        # A database outage: two lines (down, up again), not one per second (issue 14 #10).
        self._report_failures = FailureRun(
            f"sim line {name}: handing reports over", clock=clock, logger=log
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._journal_fd: int | None = None
        self.submitted = 0
        self.busy: set[int] = set()  # ports answering USSD with "busy" (tests set it)
        self._ussd_session: dict[int, str] = {}  # port → open USSD menu

    def _make_port(self, i: int) -> PortInfo:
        h = hashlib.blake2b(f"{self._cfg.seed}:{self.name}:{i}".encode(), digest_size=8).hexdigest()
        digits = str(int(h, 16)).zfill(20)
        return PortInfo(
            index=i,
            name=f"gsm-1.{i + 1}",
            imsi="46000" + digits[:10],
            iccid="8986" + digits[:16],
            number="1555" + str(1000000 + i),
            signal=20 + i % 10,
            registered=True,
            operator="SIMNET",
        )

    def ports(self) -> Sequence[PortInfo]:
        return tuple(self._ports)

    def set_port(
        self, index: int, *, registered: bool | None = None, locked: bool | None = None
    ) -> None:
        p = self._ports[index]
        self._ports[index] = PortInfo(
            p.index,
            p.name,
            p.imsi,
            p.iccid,
            p.number,
            p.signal,
            p.registered if registered is None else registered,
            p.operator,
            p.locked if locked is None else locked,
        )

    async def start(self, sink: InboundSink) -> None:
        self._sink = sink
        if self._cfg.journal:
            # Opened first: an entry a kill cut short is marked so before the replay reads it.
            self._journal_fd = journal_file.open_journal(self._cfg.journal)
            self._replay_journal(self._cfg.journal)
        self._task = asyncio.create_task(self._deliver_reports(), name=f"sim-{self.name}-reports")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None

    @property
    def batches(self) -> bool:
        """A batch is taken in one call unless each submit waits (lines.base.BatchLine)."""
        return not self._cfg.submit_latency_ms

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        if self._cfg.submit_latency_ms:
            await self._clock.sleep(self._cfg.submit_latency_ms / 1000)
        refused = self._refusal(request)
        if refused is not None:
            return refused
        if request.on_write is not None:  # from here on the message has left (WRITE_MARKS)
            request.on_write(request.message_id)
        return self._take([request])[0]

    async def submit_batch(
        self, requests: Sequence[SubmitRequest], *, on_write: BatchMarks | None
    ) -> list[SubmitResult]:
        """The batch in one go: one mark and one journal write for all that leave, and
        their reports scheduled together (issue 15: the per-message work of the sim line
        was a tenth of the dispatcher's). Outcomes are those of :meth:`submit`."""
        results: list[SubmitResult | None] = []
        leaving: list[SubmitRequest] = []
        for request in requests:
            refused = self._refusal(request)
            results.append(refused)
            if refused is None:
                leaving.append(request)
        if not leaving:
            return [r for r in results if r is not None]
        if on_write is not None:  # from here on they have left (BatchLine)
            on_write([r.message_id for r in leaving])
        taken = iter(self._take(leaving))
        return [r if r is not None else next(taken) for r in results]

    def _refusal(self, request: SubmitRequest) -> SubmitResult | None:
        """The answer of a message that does not leave (port down, rejected), else None."""
        if not self._ports[request.port].usable:
            return SubmitResult(Outcome.RETRY, error_text=f"port {request.port} not registered")
        if _below(self._cfg.failure_ratio, self._cfg.seed, request.message_id, "submit"):
            return SubmitResult(
                Outcome.REJECTED, error_code=UNDELIVERABLE, error_text="rejected by sim line"
            )
        return None

    def _take(self, requests: Sequence[SubmitRequest]) -> list[SubmitResult]:
        """The SMSC takes ``requests`` (already marked as written): one journal write and
        one scheduled entry of reports for all of them."""
        seed, ratio = self._cfg.seed, self._cfg.delivery_ratio
        codes = [
            DELIVERED if _below(ratio, seed, r.message_id, "deliver") else UNDELIVERABLE
            for r in requests
        ]
        if self._journal_fd is not None:
            entries = [
                f"S {r.message_id} {r.parts} {code if r.report_requested else '-'} "
                f"{r.lease_seq} {r.port}\n"
                for r, code in zip(requests, codes, strict=True)
            ]
            journal_file.append(self._journal_fd, "".join(entries))
        self.submitted += len(requests)
        due = self._clock.now_ms() + self._cfg.report_delay_ms
        reports: list[LineReport] = []
        results: list[SubmitResult] = []
        mr = self._mr
        for r, code in zip(requests, codes, strict=True):
            first_mr = mr[r.port]
            mr[r.port] = (first_mr + r.parts) % 256
            refs = _refs(r.message_id, r.parts)
            if r.report_requested:
                reports += _reports(
                    r.message_id, refs, code, lease_seq=r.lease_seq, port=r.port, done_ms=due
                )
            results.append(SubmitResult(Outcome.OK, refs, first_mr))  # positional: cheaper
        if reports:
            self._schedule(reports)
        return results

    def _schedule(self, reports: Sequence[LineReport]) -> None:
        """Due by their ``done_ms``; reports due at the same time share one heap entry
        (a batch's reports, at the configured delay: not one entry per part)."""
        by_due: dict[int, list[LineReport]] = {}
        for report in reports:
            by_due.setdefault(report.done_ms, []).append(report)
        for due, group in by_due.items():
            self._seq += 1
            heapq.heappush(self._due, _Due(due, self._seq, group))
        self._wake.set()

    def _replay_journal(self, path: str) -> None:
        pending: dict[str, LineReport] = {}
        now = self._clock.now_ms()
        with contextlib.suppress(FileNotFoundError), open(path, encoding="ascii") as fh:
            for line in fh:
                if not journal_file.is_whole(line):
                    continue  # cut by a kill, or a peer's entry still being written
                fields = line.split()
                if len(fields) in (4, 6) and fields[0] == "S" and fields[3] != "-":
                    # 4 fields: written before hints; lease 0 is no lease, so it matches none.
                    mid, parts, code = int(fields[1]), int(fields[2]), int(fields[3])
                    lease_seq, port = (int(fields[4]), int(fields[5])) if fields[4:] else (0, 0)
                    refs = _refs(mid, parts)
                    for r in _reports(mid, refs, code, lease_seq=lease_seq, port=port, done_ms=now):
                        pending[r.line_ref] = r
                elif len(fields) == 2 and fields[0] == "A":
                    pending.pop(fields[1], None)
        self._schedule(list(pending.values()))

    async def _deliver_reports(self) -> None:
        while True:
            if not self._due:
                self._wake.clear()
                await self._wake.wait()
                continue
            now = self._clock.now_ms()
            if self._due[0].due_ms > now:
                self._wake.clear()
                sleeper = asyncio.ensure_future(
                    self._clock.sleep((self._due[0].due_ms - now) / 1000)
                )
                waker = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
                sleeper.cancel()
                waker.cancel()
                continue
            batch: list[LineReport] = []
            while self._due and self._due[0].due_ms <= now and len(batch) < REPORTS_PER_CALL:
                entry = heapq.heappop(self._due)
                room = REPORTS_PER_CALL - len(batch)
                batch += entry.reports[:room]
                if len(entry.reports) > room:  # the rest stays first in line
                    entry.reports = entry.reports[room:]
                    heapq.heappush(self._due, entry)
            assert self._sink is not None
            try:
                await self._sink.delivery_reports(self.name, batch)
            except Exception as exc:
                # As an SMSC redelivers an unacknowledged deliver_sm: keep them, try later.
                self._report_failures.failed(exc)
                self._seq += 1
                heapq.heappush(self._due, _Due(now + REDELIVER_MS, self._seq, batch))
                continue
            self._report_failures.succeeded()
            if self._journal_fd is not None:
                journal_file.append(self._journal_fd, "".join(f"A {r.line_ref}\n" for r in batch))

    async def inject_incoming(self, *, port: int, sender: str, text: str) -> None:
        """An SMS arriving on ``port`` (what ``simgate sim inbound`` does in-process)."""
        assert self._sink is not None, "line not started"
        sms = IncomingSms(
            port=port,
            sender=sender,
            recipient=self._ports[port].number,
            text=text,
            received_ms=self._clock.now_ms(),
            smsc="+15550000000",
        )
        await self._sink.incoming(self.name, [sms])

    async def change_port(self, index: int, *, registered: bool) -> None:
        """A SIM registering or dropping off the network; the sink hears of it."""
        before = self._ports[index].registered
        self.set_port(index, registered=registered)
        if self._sink is not None and before != registered:
            await self._sink.port_changed(self.name, index, registered)

    # ---- USSD (lines.base.UssdLine): a tiny deterministic network menu ------------------
    async def send_ussd(self, port: int, text: str) -> UssdResult:
        p = self._ports[port]
        if not p.usable:
            return UssdResult(UssdStatus.NOT_REGISTERED)
        if port in self.busy:
            return UssdResult(UssdStatus.BUSY)
        menu = self._ussd_session.pop(port, None)
        if menu is not None and text.strip() in ("1", "2"):
            return UssdResult(UssdStatus.SENT, f"{menu} option {text.strip()}: done")
        if text == "*100#":
            cents = int(p.imsi[-4:]) % 10_000
            return UssdResult(UssdStatus.SENT, f"Balance: {cents // 100}.{cents % 100:02d} USD")
        if text == "*123#":
            self._ussd_session[port] = "Menu"
            return UssdResult(UssdStatus.SENT, "Menu: 1. Balance 2. Data")
        return UssdResult(UssdStatus.SENT, f"Unknown USSD code {text} on {p.number}")

    async def cancel_ussd(self, port: int) -> UssdResult:
        self._ussd_session.pop(port, None)
        ok = self._ports[port].usable
        return UssdResult(UssdStatus.SENT if ok else UssdStatus.NOT_REGISTERED)

    # ---- port control (lines.base.PortControlLine) -------------------------------------
    async def control_port(self, port: int, action: PortAction) -> bool:
        if action is PortAction.LOCK or action is PortAction.UNLOCK:
            self.set_port(port, locked=action is PortAction.LOCK)
        elif action is PortAction.POWER_OFF or action is PortAction.POWER_ON:
            await self.change_port(port, registered=action is PortAction.POWER_ON)
        else:  # RESET: a simulated module comes back at once
            self._ussd_session.pop(port, None)
        return True

    @property
    def pending_reports(self) -> int:
        return sum(len(entry.reports) for entry in self._due)


def _refs(mid: int, parts: int) -> tuple[str, ...]:
    if parts == 1:  # most messages: no generator per message
        return (f"{mid}.0",)
    return tuple(f"{mid}.{i}" for i in range(parts))


def _reports(
    mid: int, refs: Sequence[str], code: int, *, lease_seq: int, port: int, done_ms: int
) -> list[LineReport]:
    """The reports of one submit (its parts' ``refs``), each with the hint of the submit it
    reports on.

    Built with ``tuple.__new__`` and every field given, in the NamedTuples' order
    (LineReport: line_ref, status_code, done_ms, hint; ReportHint: message_id, lease_seq,
    part, parts, port, covers): their constructors are a Python call each, two per part
    of every message the sim line takes (a tenth of the dispatcher's own CPU on the sim
    line, issue 15). tests/lines/test_sim.py holds the reports to the constructors'."""
    parts = len(refs)
    new = tuple.__new__
    return [
        new(
            LineReport,
            (ref, code, done_ms, new(ReportHint, (mid, lease_seq, i + 1, parts, port, 1))),
        )
        for i, ref in enumerate(refs)
    ]
