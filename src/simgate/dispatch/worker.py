"""The dispatcher: lease due messages, pick a port, submit, record the answers.

One cycle = one lease of up to ``batch_size`` rows, submitted concurrently, recorded in one
write. Crash safety comes from the order: the lease is committed before any submit, and the
result after; a worker that dies in between leaves rows in SUBMITTING whose lease expires,
and the reaper marks them UNKNOWN (spec §7) instead of sending them again; the line's late
reports, which carry the try (``Leased.lease_seq``), can still settle them.

The running loop pipelines the cycles (issue 15): while batch N is being submitted, the
answers of batch N-1 are recorded and, when N was full, batch N+1 is leased, so the line does
not sit idle during the database's turn (and the record and the lease share one commit).
Every open lease is in the write journal until its answers are committed, so the order
above still holds per batch. ``run_once`` (tests, one step at a time) does not pipeline.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from sqlalchemy.exc import DBAPIError

from simgate.clock import Clock, SystemClock
from simgate.dispatch.eager import gather_eager
from simgate.dispatch.journal import WriteJournal
from simgate.dispatch.ports import PortPicker, parse_hint
from simgate.dispatch.report_hold import ReportHold
from simgate.domain.messages import Event
from simgate.domain.queue import Leased, PartReport, SubmitRecord
from simgate.domain.routing import route_for
from simgate.errors import StoreError
from simgate.lease_loop import QUEUE, LeaseLoop, Wakeup
from simgate.lines.base import (
    BatchLine,
    Capability,
    Line,
    Outcome,
    PortInfo,
    SubmitRequest,
    SubmitResult,
)
from simgate.metrics import Metrics
from simgate.services.lines import LineService
from simgate.services.messaging import MessagingService
from simgate.settings import Route, WorkerSettings

log = logging.getLogger(__name__)

# A test fault point (tests/process/test_late_reports.py), read once at start-up: with
# SIMGATE_TEST_KILL_AFTER_SUBMITS=N the process SIGKILLs itself when the line has answered its
# N-th batch, before those answers are recorded: the crash window of README "Crash safety".
KILL_AFTER_SUBMITS_ENV = "SIMGATE_TEST_KILL_AFTER_SUBMITS"
# The same, mid-batch (tests/process/test_crash_mid_batch.py): SIGKILL once the line has
# answered the N-th message, while the rest of its batch is still to be written.
KILL_AFTER_WRITES_ENV = "SIMGATE_TEST_KILL_AFTER_WRITES"


# How long a cycle waits for more messages before its lease while they keep arriving one
# request at a time (issue 15: in `simgate run` under HTTP single sends, the worker's cost per
# message is mostly per transaction, so fewer, larger batches; a few ms beside a send's p50).
GATHER_S = 0.002

# Retrying the answers' write while the database is away: first pause, longest pause.
RECORD_RETRY_FIRST_S = 0.1
RECORD_RETRY_MAX_S = 5.0


class Dispatcher:
    def __init__(
        self,
        *,
        messaging: MessagingService,
        line_state: LineService,
        lines: Mapping[str, Line],
        routes: Sequence[Route],
        settings: WorkerSettings,
        clock: Clock,
        metrics: Metrics,
        owner: str | None = None,
        rng: random.Random | None = None,
        journal: WriteJournal | None = None,
        wakeup: Wakeup | None = None,
        idle_clock: Clock | None = None,
        hold: ReportHold | None = None,
    ) -> None:
        self._messaging = messaging
        # Reports that overtake their submit's record wait here for it (dispatch/report_hold.py).
        self._hold = hold
        self._line_state = line_state
        self._lines = dict(lines)
        self._routes = sorted(routes, key=lambda r: len(r.prefix), reverse=True)
        self._cfg = settings
        self._clock = clock
        self._metrics = metrics
        self.owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
        self._rng = rng or random.Random()
        self._pickers = {
            name: PortPicker(line.port_rate_per_minute) for name, line in lines.items()
        }
        # The lines that can take a batch in one call (lines.base.BatchLine; whether they
        # do is asked per batch).
        self._batch_lines = {n: line for n, line in lines.items() if isinstance(line, BatchLine)}
        self._owned: set[str] = {n for n, line in lines.items() if not line.exclusive}
        self._claim_due_ms: dict[str, int] = {}
        self._journal = journal
        self._recovered = False
        self._kill_after = int(os.environ.get(KILL_AFTER_SUBMITS_ENV) or 0)
        self._answered = 0
        self._kill_after_writes = int(os.environ.get(KILL_AFTER_WRITES_ENV) or 0)
        self._written = 0
        # The pipeline (module docstring): a batch leased ahead, not yet submitted, and
        # answered batches whose answers are still to be recorded (with their leased ids).
        self._ahead: list[Leased] | None = None
        self._unrecorded: list[tuple[list[SubmitRecord], list[int]]] = []
        # The last cycle leased a partial batch and was woken again after its lease: messages
        # keep arriving, so the next cycle gathers for GATHER_S before it leases.
        self._arriving = False
        # The earliest retry this worker scheduled (ms on self._clock), so an idle loop
        # wakes for it instead of polling (issue 15).
        self._retry_due_ms: int | None = None
        # Idle polls run in real time whatever the injected clock says: other processes (the
        # API, other workers) queue rows on their own time, and a test may set its clock back.
        # Work queued in this process (or NOTIFYed by others on PostgreSQL) wakes it at once,
        # so the poll backs off to idle_max_seconds while nothing comes.
        self._loop = LeaseLoop(
            "dispatch",
            cycle=self._cycle,
            clock=idle_clock or SystemClock(),
            idle_seconds=settings.idle_poll_seconds,
            idle_max_seconds=settings.idle_max_seconds,
            # What queues work in this process wakes the loop (and NOTIFY from others on
            # PostgreSQL): the poll is for the rest, at its own pace.
            wake_resets_backoff=wakeup is None,
        )
        self._wakeup = wakeup
        if wakeup is not None:
            wakeup.attach(QUEUE, self._loop)

    # ---- lifecycle -------------------------------------------------------------------
    async def recover(self) -> None:
        """Settle the lease a killed predecessor left in this journal slot: what it marked
        as written becomes UNKNOWN, the rest is queued again (dispatch/journal.py). Before
        the reaper's first pass, which would make all of it UNKNOWN."""
        journal = self._journal
        if journal is None or self._recovered:
            return
        left = journal.leftover
        if left is not None and (left.leased or left.written):
            unknown, requeued = await self._messaging.recover_lease(
                owner=left.owner,
                leased=left.leased,
                written=left.written,
                now_ms=self._clock.now_ms(),
            )
            if unknown or requeued:
                log.warning(
                    "lease of %s (killed): %d may have reached the line (UNKNOWN), "
                    "%d never did (queued again)",
                    left.owner,
                    unknown,
                    requeued,
                )
        journal.begin(self.owner)
        self._recovered = True

    async def start(self) -> None:
        await self.recover()
        self._loop.start()

    async def stop(self) -> None:
        """Finish the cycle in flight (so its results are recorded), then stop."""
        await self._loop.stop()
        await self._drain()
        if self._wakeup is not None:
            self._wakeup.detach(self._loop)
        for name in self._lines:
            if self._lines[name].exclusive and name in self._owned:
                await self._line_state.release(line=name, owner=self.owner)
        if self._journal is not None:
            self._journal.close()

    @property
    def loop(self) -> LeaseLoop:
        """The dispatch loop (tests count its cycles)."""
        return self._loop

    async def _cycle(self) -> bool:
        await self.claim_lines(force=False)
        if self._arriving:
            # Under load (the last small batch was followed by more before it was even
            # submitted): let what is still coming join this lease. Bounded, and only then:
            # the first message after a quiet spell is leased at once.
            await asyncio.sleep(GATHER_S)
        leased = await self._step(pipelined=True)
        busy = leased > 0
        partial = busy and leased < self._cfg.batch_size
        self._arriving = partial and self._loop.woken
        if partial and not self._loop.woken:
            # The lease took all that was due and nothing was queued since (it would have
            # woken the loop): record the answers now, alone, instead of in a cycle of their
            # own beside a lease that finds nothing (issue 15: in `simgate run` those
            # cycles, and the quick polls after them, were most of a single send's worker
            # transactions). When woken meanwhile, the next cycle records them and leases
            # what came, in one commit.
            await self._record_unrecorded()
            busy = False
        self._announce_due()
        return busy

    def _announce_due(self) -> None:
        """Tell the loop when scheduled work falls due: the next lease renewal of a line
        and the earliest retry this worker recorded (a retry is QUEUED with a due time)."""
        now = self._clock.now_ms()
        due = [d for n, d in self._claim_due_ms.items() if self._lines[n].exclusive]
        if self._retry_due_ms is not None:
            if self._retry_due_ms <= now:
                self._retry_due_ms = None  # this cycle's lease saw it due
            else:
                due.append(self._retry_due_ms)
        if due:
            self._loop.due_in((min(due) - now) / 1000)

    def _note_retries(self, records: Sequence[SubmitRecord]) -> None:
        for r in records:
            at = r.retry_at_ms
            due = self._retry_due_ms
            if r.event is Event.SUBMIT_RETRY and at and (due is None or at < due):
                self._retry_due_ms = at

    async def claim_lines(self, *, force: bool = True) -> None:
        """Take or renew the lease of every exclusive line this worker can drive.

        The loop calls it every cycle but writes only every third of a lease (renewing
        well before expiry, and retrying a line held by another worker at that pace), so an
        idle worker does not commit a lease row every poll interval.
        """
        now = self._clock.now_ms()
        lease_ms = int(self._cfg.lease_seconds * 1000)
        until = now + lease_ms
        for name, line in self._lines.items():
            if not line.exclusive:
                continue
            if not force and now < self._claim_due_ms.get(name, 0):
                continue
            self._claim_due_ms[name] = now + max(1, lease_ms // 3)
            if await self._line_state.claim(
                line=name, owner=self.owner, now_ms=now, until_ms=until
            ):
                self._owned.add(name)
            else:
                self._owned.discard(name)

    # ---- one cycle -------------------------------------------------------------------
    async def run_once(self) -> int:
        """One cycle, its answers recorded before it returns (no pipelining)."""
        leased = await self._step(pipelined=False)
        await self._record_unrecorded()
        return leased

    async def _step(self, *, pipelined: bool) -> int:
        """Lease (or take the batch leased ahead), submit; meanwhile record what the last
        step answered and, when ``pipelined`` and this batch is full, lease the next one.
        This batch's answers are left for the next step (or :meth:`_drain`) to record."""
        leased, self._ahead = self._ahead, None
        if leased is None:
            if not self._owned:
                await self._record_unrecorded()
                return 0
            # The lease and the last answers go to the writer together: one commit.
            leasing = asyncio.ensure_future(self._lease())
            (recorded,) = await asyncio.gather(self._record_unrecorded(), return_exceptions=True)
            leased = await leasing
            if isinstance(recorded, BaseException):
                self._ahead = leased or None  # not submitted: a stop gives it back
                raise recorded
            if not leased:
                return 0
        submitting = asyncio.ensure_future(self._submit_all(leased))
        meanwhile = [self._record_unrecorded()]
        if pipelined and len(leased) >= self._cfg.batch_size and self._owned:
            meanwhile.append(self._lease_ahead())
        side = await asyncio.gather(*meanwhile, return_exceptions=True)
        # _submit_all turns line errors into UNKNOWN answers: it does not raise.
        records = await submitting
        self._fault_point()
        self._unrecorded.append((records, [m.id for m in leased]))
        for failed in side:
            if isinstance(failed, BaseException):
                raise failed
        return len(leased)

    async def _lease(self) -> list[Leased]:
        self._loop.looking()  # wake-ups so far are answered by this lease
        now = self._clock.now_ms()
        leased = await self._messaging.lease(
            lines=sorted(self._owned),
            owner=self.owner,
            now_ms=now,
            lease_until_ms=now + int(self._cfg.lease_seconds * 1000),
            limit=self._cfg.batch_size,
        )
        if leased and self._journal is not None:
            self._journal.leased([m.id for m in leased])
        return leased

    async def _lease_ahead(self) -> None:
        self._ahead = await self._lease() or None

    async def _record_unrecorded(self) -> None:
        """Record every answered batch not recorded yet (one write), then free its journal
        lease."""
        if not self._unrecorded:
            return
        batches, self._unrecorded = self._unrecorded, []
        records = [r for answers, _ in batches for r in answers]
        # The reports held for these messages go in the same transaction; taken in the turn
        # the write is queued, so a report coming later is written after it.
        held = self._hold.take([r.message_id for r in records]) if self._hold else None
        try:
            await self._record(records, held.reports if held else ())
        except BaseException as exc:
            self._unrecorded[:0] = batches  # still to record (a stop gives up: the journal)
            if held is not None:
                held.failed(exc)  # the line keeps them and offers them again
            raise
        if held is not None:
            held.committed()
        self._note_retries(records)
        if self._journal is not None:
            for _, ids in batches:
                self._journal.done(ids)

    async def _drain(self) -> None:
        """On stop: record what was answered, and give the batch leased ahead back to the
        queue (nothing of it reached the line, so no UNKNOWN). With the database away it
        gives up: the write journal tells the next start, as after a kill."""
        try:
            await self._record_unrecorded()
            ahead, self._ahead = self._ahead, None
            if ahead:
                ids = [m.id for m in ahead]
                await self._messaging.recover_lease(
                    owner=self.owner, leased=ids, written=(), now_ms=self._clock.now_ms()
                )
                if self._journal is not None:
                    self._journal.done(ids)
        except (StoreError, DBAPIError, OSError) as exc:
            log.warning("stopping with answers unrecorded (the journal keeps them): %s", exc)

    async def _record(
        self, records: Sequence[SubmitRecord], reports: Sequence[PartReport] = ()
    ) -> None:
        """Write the line's answers, however long the database is away (issue 14 item 4):
        they are the only record of what the line took. The batch is all this worker holds
        meanwhile (it leases nothing else), so memory stays bounded. Rows the reaper gave up
        on while the database was away are still this worker's to record (MessagingService
        ``_held_by``). A stop gives up: the write journal then tells the next start."""
        delay = RECORD_RETRY_FIRST_S
        failures = 0
        while True:
            try:
                await self._messaging.record_submits(
                    records, owner=self.owner, now_ms=self._clock.now_ms(), reports=reports
                )
            except (StoreError, DBAPIError, OSError) as exc:
                if self._loop.stopping:
                    raise
                if not failures:  # one line per outage, not one per retry
                    log.warning("cannot record %d answers, retrying: %s", len(records), exc)
                failures += 1
                await self._clock.sleep(delay)
                delay = min(delay * 2, RECORD_RETRY_MAX_S)
                continue
            if failures:
                log.warning("recorded %d answers after %d retries", len(records), failures)
            return

    def _fault_point(self) -> None:
        if self._kill_after:
            self._answered += 1
            if self._answered >= self._kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    async def _submit_all(self, leased: Sequence[Leased]) -> list[SubmitRecord]:
        now = self._clock.now_ms()
        planned: list[tuple[Leased, int]] = []
        records: list[SubmitRecord] = []
        # Each line's ports, asked once per batch (nothing changes them while this loop
        # runs: it does not yield); a line builds the sequence on every call.
        ports: dict[str, Sequence[PortInfo]] = {}
        for msg in leased:
            line = self._lines[msg.line]
            hint = parse_hint(msg.port_hint)
            its = ports.get(msg.line)
            if its is None:
                its = ports[msg.line] = line.ports()
            port = self._pickers[msg.line].pick(its, hint, now)
            if port is None:
                records.append(self._defer(msg, line, hint, now))
            else:
                planned.append((msg, port))
        batching = {name for name, line in self._batch_lines.items() if line.batches}
        batched: dict[str, list[int]] = {}  # line -> positions in planned (BatchLine)
        alone: list[int] = []
        for i, (msg, _) in enumerate(planned):
            if msg.line in batching:
                batched.setdefault(msg.line, []).append(i)
            else:
                alone.append(i)
        results: list[SubmitResult | None] = [None] * len(planned)

        async def in_batches() -> None:
            for name, positions in batched.items():
                got = await self._submit_batch(name, [planned[i] for i in positions])
                for i, result in zip(positions, got, strict=True):
                    results[i] = result

        async def one_by_one() -> None:
            # No Task per message for a line that takes it without waiting (dispatch/eager.py).
            got = await gather_eager(self._submit(*planned[i]) for i in alone)
            for i, result in zip(alone, got, strict=True):
                results[i] = result

        # Side by side: a line that waits for its answers holds up no other line.
        await gather_eager([in_batches(), one_by_one()])
        answers = [r for r in results if r is not None]
        records.extend(self._to_record(m, p, r) for (m, p), r in zip(planned, answers, strict=True))
        self._count_outcomes(planned, answers)
        return records

    async def _submit_batch(
        self, name: str, planned: Sequence[tuple[Leased, int]]
    ) -> list[SubmitResult]:
        """A batch of one line that takes it in one call (lines.base.BatchLine), marked in
        the journal in one write before any of it leaves."""
        line = self._batch_lines[name]
        requests = [self._request(msg, port, None) for msg, port in planned]
        marks = self._journal.mark_many if self._journal is not None else None
        try:
            results = await line.submit_batch(requests, on_write=marks)
        except Exception as exc:
            log.exception("line %s raised on a batch of %d", name, len(requests))
            results = [_line_error(exc)] * len(requests)
        for (msg, _), result in zip(planned, results, strict=True):
            self._answered_one(msg, result)
        return results

    def _count_outcomes(
        self, planned: Sequence[tuple[Leased, int]], results: Sequence[SubmitResult]
    ) -> None:
        """The submits counter, once per (line, outcome) of the batch, not once per message
        (a labels() look-up and a lock per message were a tenth of the dispatcher's own work)."""
        seen = Counter(
            (m.line, r.outcome.value) for (m, _), r in zip(planned, results, strict=True)
        )
        for (line, outcome), n in seen.items():
            self._metrics.submits.labels(line, outcome).inc(n)

    def _defer(
        self, msg: Leased, line: Line, hint: frozenset[int] | None, now: int
    ) -> SubmitRecord:
        wait = self._pickers[msg.line].wait_ms(line.ports(), hint, now)
        if wait is None:
            # No allowed port is usable right now: look again soon, without spending an attempt.
            wait = int(self._cfg.retry_base_seconds * 1000)
        return SubmitRecord(
            msg.id,
            Event.SUBMIT_RETRY,
            retry_at_ms=now + max(wait, 1),
            count_attempt=False,
            error_text="no free port",
        )

    async def _submit(self, msg: Leased, port: int) -> SubmitResult:
        line = self._lines[msg.line]
        on_write = None
        if self._journal is not None:
            # Marked the moment before it may leave: by the line itself when it can (WRITE_MARKS:
            # a batch's submits wait for latency, ports and windows), else here.
            if Capability.WRITE_MARKS in line.capabilities:
                on_write = self._journal.mark
            else:
                self._journal.mark(msg.id)
        try:
            result = await line.submit(self._request(msg, port, on_write))
        except Exception as exc:
            log.exception("line %s raised on submit of %s", msg.line, msg.id)
            result = _line_error(exc)
        self._answered_one(msg, result)
        return result

    @staticmethod
    def _request(msg: Leased, port: int, on_write: Callable[[int], None] | None) -> SubmitRequest:
        # Positional, in SubmitRequest's order (as _to_record: once per message).
        return SubmitRequest(
            msg.id,
            port,
            msg.sender,
            msg.recipient,
            msg.text,
            msg.encoding,
            msg.parts,
            msg.report_requested,
            msg.lease_seq,
            on_write,
        )

    def _answered_one(self, msg: Leased, result: SubmitResult) -> None:
        """The line answered ``msg``: its reports may be held for the record; the test
        fault point of a kill mid-batch."""
        if self._hold is not None and result.outcome is Outcome.OK:
            self._hold.expect(msg.id, msg.lease_seq)
        if self._kill_after_writes:
            self._written += 1
            if self._written >= self._kill_after_writes:
                os.kill(os.getpid(), signal.SIGKILL)

    def _to_record(self, msg: Leased, port: int, r: SubmitResult) -> SubmitRecord:
        if r.outcome is Outcome.OK:  # the common case: one constructor call, no _replace()
            # Positional, in SubmitRecord's order (by keyword a NamedTuple costs 0.25 µs more
            # to build, once per message: issue 15).
            return SubmitRecord(
                msg.id,
                Event.SUBMIT_OK,
                port,
                r.part_refs,
                r.first_ref,
                0,  # retry_at_ms
                True,  # count_attempt
                msg.line,
                r.error_code,
                r.error_text,
            )
        base = SubmitRecord(
            msg.id, Event.SUBMIT_OK, port=port, status_code=r.error_code, error_text=r.error_text
        )
        if r.outcome is Outcome.REJECTED:
            return base._replace(event=Event.SUBMIT_REJECTED)
        if r.outcome is Outcome.UNKNOWN:
            return base._replace(event=Event.LEASE_EXPIRED)
        # RETRY: back off, or give up when attempts are spent; fail over to the next line.
        if msg.attempts + 1 >= self._cfg.max_attempts:
            return base._replace(event=Event.SUBMIT_FAILED)
        delay = self._backoff_s(msg.attempts) if r.retry_after_s is None else r.retry_after_s
        return base._replace(
            event=Event.SUBMIT_RETRY,
            retry_at_ms=self._clock.now_ms() + int(delay * 1000),
            line=self._failover(msg),
        )

    def _backoff_s(self, attempts: int) -> float:
        """Exponential backoff with full jitter (so retries from a burst spread out)."""
        ceiling = min(self._cfg.retry_max_seconds, self._cfg.retry_base_seconds * 2**attempts)
        return self._rng.uniform(ceiling / 2, ceiling)

    def _failover(self, msg: Leased) -> str | None:
        """The next line of the message's route, if the route has more than one."""
        route = route_for(self._routes, msg.recipient)
        if route is None or len(route.lines) < 2 or msg.line not in route.lines:
            return None
        i = route.lines.index(msg.line)
        return route.lines[(i + 1) % len(route.lines)]


def _line_error(exc: Exception) -> SubmitResult:
    """What a line's own exception answers: a driver bug must not lose the batch, and the
    message may have left, so it is ambiguous: UNKNOWN (spec §7)."""
    return SubmitResult(Outcome.UNKNOWN, error_text=f"line error: {type(exc).__name__}")
