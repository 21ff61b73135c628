"""The call dispatcher: lease queued calls, pace them onto voice lines, run each call, bill it.

The driver (lines/voice.py) only places calls and reports events; the policy of one attempt
(maxRingingTime, maxDuration, loopCount, DTMF, redials, the charge, 402) is the pure
:class:`simgate.domain.call_flow.CallFlow`. What stays here is I/O: lease (on the shared
:class:`simgate.lease_loop.LeaseLoop`), pace calls per second and per line, feed each call's
line events and timers to its flow, carry out its commands, and record the ending.

Crash safety: a call is CALLING under this worker's lease while it runs; if the worker dies,
the lease expires and :meth:`CallService.reap` ends it as "call lost" (SIP 500, not charged),
never dialling it again blindly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Mapping

from simgate.clock import Clock, SystemClock
from simgate.dispatch.call_events import LineEvents
from simgate.dispatch.group_write import GroupWrite
from simgate.dispatch.pacing import Pacer
from simgate.domain import call_flow as flow
from simgate.domain.call_flow import REDIAL_CODES, CallFlow
from simgate.domain.calls import Audio, CallFinal, LeasedCall
from simgate.lease_loop import LeaseLoop
from simgate.lines.voice import Call, CallRequest, VoiceLine
from simgate.metrics import Metrics
from simgate.services.calls import CallService
from simgate.settings import VoiceSettings, WorkerSettings

__all__ = ["REDIAL_CODES", "CallDispatcher"]

log = logging.getLogger(__name__)

AUDIO_CACHE = 64
Ending = flow.Finish | flow.Redial


class CallDispatcher:
    def __init__(
        self,
        *,
        calls: CallService,
        lines: Mapping[str, VoiceLine],
        settings: VoiceSettings,
        worker: WorkerSettings,
        clock: Clock,
        metrics: Metrics,
        owner: str | None = None,
    ) -> None:
        self._service = calls
        self._pacer = Pacer(lines)
        self._cfg = settings
        self._worker = worker
        self._clock = clock
        self._metrics = metrics
        self.owner = owner or f"calls-{uuid.uuid4().hex[:12]}"
        self._audio: OrderedDict[int, Audio] = OrderedDict()
        self._calls: dict[int, asyncio.Task[None]] = {}
        self._sessions: dict[int, Call] = {}
        # Idle polls run in real time whatever the injected clock says: other processes (the
        # API, other workers) queue rows on their own time, and a test may set its clock back.
        self._loop = LeaseLoop(
            "call dispatch",
            cycle=self._cycle,
            clock=SystemClock(),
            idle_seconds=settings.idle_poll_seconds,
            # Every finished call wakes the loop; those that finish while a lease runs wait
            # for the next wake-up, so they are leased for together (a lease per finished
            # call costs PostgreSQL round trips: bench/voice_calls.py).
            wakes_during_cycle=False,
        )
        self._reaped_at = 0
        self._renew_due_ms = 0
        # Calls waiting on the database right now (not on the clock or the line): tests drive
        # the fake clock only when this is 0, so a step never overtakes a write.
        self.io_in_flight = 0
        self._finals = GroupWrite(self._finish)
        self._freed = asyncio.Event()  # a line slot was released
        self._waiting: dict[int, asyncio.Task[None]] = {}  # leased, waiting for a route's line

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        await self.reap()  # calls left CALLING by a crashed predecessor
        self._loop.start()

    async def stop(self) -> None:
        """Lease no more; hang up the calls in progress and record how they ended."""
        await self._loop.stop()
        if self._waiting:  # never dialled: back to the queue, not lost
            for task in self._waiting.values():
                task.cancel()
            ids = list(self._waiting)
            self._waiting.clear()
            for call_id in ids:
                self._calls.pop(call_id, None)
            await self._service.release(ids=ids, owner=self.owner, now_ms=self._clock.now_ms())
        for session in list(self._sessions.values()):
            with contextlib.suppress(Exception):
                await session.hangup()
        if self._calls:
            await asyncio.gather(*self._calls.values(), return_exceptions=True)

    @property
    def active(self) -> int:
        return len(self._calls)

    async def _cycle(self) -> bool:
        now = self._clock.now_ms()
        if now - self._reaped_at >= self._worker.reaper_interval_seconds * 1000:
            await self.reap()
        await self.renew_if_due()
        return await self.run_once() > 0

    async def reap(self) -> int:
        now = self._clock.now_ms()
        self._reaped_at = now
        n = await self._service.reap(now_ms=now)
        self._metrics.calls_queued.set(await self._service.queue_depth())
        if n:
            log.warning("ended %d calls lost by a stopped worker (SIP 500, not charged)", n)
        return n

    async def renew_if_due(self) -> int:
        if self._clock.now_ms() < self._renew_due_ms:
            return 0
        return await self.renew()

    async def renew(self) -> int:
        """Renew the leases of the calls in progress, every third of a lease."""
        now = self._clock.now_ms()
        lease_ms = int(self._cfg.call_lease_seconds * 1000)
        self._renew_due_ms = now + max(1, lease_ms // 3)
        if not self._calls:
            return 0
        return await self._service.renew(
            ids=list(self._calls), owner=self.owner, lease_until_ms=now + lease_ms, now_ms=now
        )

    # ---- one cycle -------------------------------------------------------------------
    async def run_once(self) -> int:
        """Lease as many due calls as the lines have room for and start them."""
        room = min(self._pacer.free(), self._cfg.batch_size)
        if room <= 0:
            return 0
        now = self._clock.now_ms()
        leased = await self._service.lease(
            owner=self.owner,
            now_ms=now,
            lease_until_ms=now + int(self._cfg.call_lease_seconds * 1000),
            limit=room,
        )
        broke = await self._unfunded(leased)
        for call in leased:
            if call.id in broke:  # ended without dialling (a result like any other)
                self.io_in_flight += 1
                refused = _ending(self._flow(call, Audio(b"")).handle(flow.Unfunded(), now_ms=now))
                self._count(refused)
                task = asyncio.create_task(self._record_only(call.id, refused))
                self._calls[call.id] = task
                continue
            among = voice_route(self._cfg, call.callee)
            slot = self._pacer.take(previous=call.line, now_ms=now, among=among)
            if slot is None:  # its route's lines are full: it waits for one of them (leased)
                waiting = asyncio.create_task(self._run_when_free(call, among))
                self._calls[call.id] = self._waiting[call.id] = waiting
                continue
            self.io_in_flight += 1  # until the call's audio is loaded (_run_call)
            task = asyncio.create_task(self._run_call(call, slot.line, slot.start_ms - now))
            self._calls[call.id] = task
        return len(leased)

    async def _run_when_free(self, call: LeasedCall, among: tuple[str, ...] | None) -> None:
        """A call whose route's lines were all busy at lease: start it when one frees up."""
        while True:
            self._freed.clear()
            now = self._clock.now_ms()
            slot = self._pacer.take(previous=call.line, now_ms=now, among=among)
            if slot is not None:
                break
            await self._freed.wait()
        del self._waiting[call.id]
        self.io_in_flight += 1
        await self._run_call(call, slot.line, slot.start_ms - now)

    async def _unfunded(self, leased: list[LeasedCall]) -> set[int]:
        """Calls whose account can no longer pay the first billing step (call_flow.unfunded):
        they end with 402 instead of being dialled."""
        if not leased:
            return set()
        spendable = await self._service.spendable({c.account_id for c in leased})
        return flow.unfunded(leased, spendable)

    def _flow(self, call: LeasedCall, audio: Audio) -> CallFlow:
        return CallFlow(call, audio_ms=audio.duration_ms, max_call_s=self._cfg.max_call_seconds)

    async def _record_only(self, call_id: int, ending: Ending) -> None:
        try:
            await self._record(ending)
        except Exception:
            log.exception("call %s could not be recorded", call_id)
        finally:
            self.io_in_flight -= 1
            self._calls.pop(call_id, None)

    # ---- one call --------------------------------------------------------------------
    async def _run_call(self, call: LeasedCall, line_name: str, delay_ms: int) -> None:
        try:
            try:
                audio = await self._load_audio(call.audio_id)
            finally:
                self.io_in_flight -= 1
            if delay_ms > 0:
                await self._clock.sleep(delay_ms / 1000)
            line = self._pacer.line(line_name)
            ending = await self._talk(self._flow(call, audio), line_name, line, audio)
            self._count(ending)
            self.io_in_flight += 1
            try:
                await self._record(ending)
            finally:
                self.io_in_flight -= 1
        except Exception:
            log.exception("call %s failed inside the dispatcher", call.id)
        finally:
            self._pacer.release(line_name)
            self._freed.set()  # a call waiting for this line's route may start (voice routes)
            self._calls.pop(call.id, None)
            self._sessions.pop(call.id, None)
            self._loop.wake()

    async def _load_audio(self, audio_id: int) -> Audio:
        audio = self._audio.get(audio_id)
        if audio is not None:
            self._audio.move_to_end(audio_id)
            return audio
        found = await self._service.audio(audio_id)
        audio = found if found is not None else Audio(b"")
        self._audio[audio_id] = audio
        if len(self._audio) > AUDIO_CACHE:
            self._audio.popitem(last=False)
        return audio

    async def _talk(self, call: CallFlow, line_name: str, line: VoiceLine, audio: Audio) -> Ending:
        """Drive ``call`` with its line's events and its timers until it ends, carrying out
        its commands (every rule is in the flow)."""
        now = self._clock.now_ms
        (dial,) = call.handle(flow.Start(line_name), now_ms=now())
        assert isinstance(dial, flow.Dial)
        try:
            session = await line.dial(
                CallRequest(call.call.id, dial.callee, dial.caller, dial.attempt)
            )
        except Exception as exc:  # a driver bug must not lose the call's record
            log.exception("line %s raised on dial of %s", line_name, call.call.id)
            return _ending(call.handle(flow.DialFailed(repr(exc)[:200]), now_ms=now()))
        self._sessions[call.call.id] = session
        events = LineEvents(session, self._clock)
        todo = call.handle(flow.Dialled(), now_ms=now())
        wake_ms = 0
        try:
            while True:
                for command in todo:
                    if isinstance(command, flow.RequestWakeup):
                        wake_ms = command.at_ms
                    elif isinstance(command, flow.Play):
                        await session.play(audio, command.loops)
                    elif isinstance(command, flow.Hangup):
                        await session.hangup()
                    elif isinstance(command, flow.Finish | flow.Redial):
                        return command
                event = await events.next(until_ms=wake_ms)
                todo = call.handle(event, now_ms=now())
        finally:
            events.close()

    def _count(self, ending: Ending) -> None:
        r = ending.result
        self._metrics.calls.labels(r.line, str(r.sip_code)).inc()

    async def _record(self, ending: Ending) -> None:
        if isinstance(ending, flow.Redial):
            await self._service.redial(
                result=ending.result,
                owner=self.owner,
                next_attempt_ms=ending.at_ms,
                now_ms=self._clock.now_ms(),
            )
            return
        await self._finals.add(CallFinal(ending.result, ending.charge))

    async def _finish(self, finals: list[CallFinal]) -> None:
        """One write for every call that finished meanwhile (each call logs a failure; the
        reaper then ends them as lost)."""
        await self._service.finish(finals=finals, owner=self.owner, now_ms=self._clock.now_ms())


def voice_route(cfg: VoiceSettings, callee: str) -> tuple[str, ...] | None:
    """The lines that may take ``callee``: the longest matching ``[[voice.routes]]`` prefix's;
    the first voice line when routes exist but none matches; None (any line, the first with
    room first) when no route is set (issue 17)."""
    if not cfg.routes:
        return None
    best = max(
        (r for r in cfg.routes if callee.startswith(r.prefix)),
        key=lambda r: len(r.prefix),
        default=None,
    )
    if best is None:
        return (next(iter(cfg.lines)),)
    return best.lines


def _ending(commands: list[flow.Command]) -> Ending:
    """The one command of a flow that ended at once (refused, or its dial raised)."""
    (ending,) = commands
    assert isinstance(ending, flow.Finish | flow.Redial)
    return ending
