"""The call dispatcher: lease queued calls, pace them onto voice lines, run each call, bill it.

The driver (lines/voice.py) only places calls and reports events; the policy of one attempt
(maxRingingTime, maxDuration, loopCount, DTMF, redials, the charge, 402) is the pure
:class:`simgate.domain.call_flow.CallFlow`. What stays here is I/O: lease (on the shared
:class:`simgate.lease_loop.LeaseLoop`), pace calls per second and per line, feed each call's
line events and timers to its flow, carry out its commands, and record the ending.

Crash safety: a call is CALLING under this worker's lease while it runs; if the worker dies,
the lease expires and :meth:`CallRepo.reap` ends it as "call lost" (SIP 500, not charged),
never dialling it again blindly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from simgate.clock import Clock
from simgate.domain import call_flow as flow
from simgate.domain.call_flow import REDIAL_CODES, CallFlow
from simgate.domain.calls import SIP_SERVICE_UNAVAILABLE, Audio, CallFinal, LeasedCall
from simgate.lease_loop import LeaseLoop
from simgate.lines.voice import Call, CallEvent, CallEventKind, CallRequest, VoiceLine
from simgate.metrics import Metrics
from simgate.settings import VoiceSettings, WorkerSettings
from simgate.store import Store

__all__ = ["REDIAL_CODES", "CallDispatcher"]

log = logging.getLogger(__name__)

AUDIO_CACHE = 64
Ending = flow.Finish | flow.Redial


@dataclass
class _LineState:
    line: VoiceLine
    active: int = 0
    next_slot_ms: int = 0  # calls-per-second pacing: the earliest start of the next dial


class CallDispatcher:
    def __init__(
        self,
        *,
        store: Store,
        lines: Mapping[str, VoiceLine],
        settings: VoiceSettings,
        worker: WorkerSettings,
        clock: Clock,
        metrics: Metrics,
        owner: str | None = None,
    ) -> None:
        self._store = store
        self._lines = {name: _LineState(line) for name, line in lines.items()}
        self._cfg = settings
        self._worker = worker
        self._clock = clock
        self._metrics = metrics
        self.owner = owner or f"calls-{uuid.uuid4().hex[:12]}"
        self._audio: OrderedDict[int, Audio] = OrderedDict()
        self._calls: dict[int, asyncio.Task[None]] = {}
        self._sessions: dict[int, Call] = {}
        self._loop = LeaseLoop(
            "call-dispatcher",
            cycle=self._cycle,
            clock=clock,
            idle_seconds=settings.idle_poll_seconds,
        )
        self._reaped_at = 0
        self._renew_due_ms = 0
        # Calls waiting on the database right now (not on the clock or the line): tests drive
        # the fake clock only when this is 0, so a step never overtakes a write.
        self.io_in_flight = 0
        # Finished calls wait here for one shared write: a finish per call would cost a
        # transaction's worth of statements each (bench/voice_calls.py: 45x slower).
        self._finals: list[tuple[CallFinal, asyncio.Future[None]]] = []
        self._flushing = False

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        await self.reap()  # calls left CALLING by a crashed predecessor
        self._loop.start()

    async def stop(self) -> None:
        """Lease no more; hang up the calls in progress and record how they ended."""
        await self._loop.stop()
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
        n = await self._store.db.write(functools.partial(self._store.calls.reap, now_ms=now))
        async with self._store.db.read() as conn:
            self._metrics.calls_queued.set(await self._store.calls.queue_depth(conn))
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
        job = functools.partial(
            self._store.calls.renew,
            ids=list(self._calls),
            owner=self.owner,
            lease_until_ms=now + lease_ms,
            now_ms=now,
        )
        n: int = await self._store.db.write(job)
        return n

    # ---- one cycle -------------------------------------------------------------------
    def _free(self) -> int:
        return sum(max(0, s.line.max_concurrent - s.active) for s in self._lines.values())

    async def run_once(self) -> int:
        """Lease as many due calls as the lines have room for and start them."""
        room = min(self._free(), self._cfg.batch_size)
        if room <= 0:
            return 0
        now = self._clock.now_ms()
        job = functools.partial(
            self._store.calls.lease,
            owner=self.owner,
            now_ms=now,
            lease_until_ms=now + int(self._cfg.call_lease_seconds * 1000),
            limit=room,
        )
        leased: list[LeasedCall] = await self._store.db.write(job)
        broke = await self._unfunded(leased)
        for call in leased:
            if call.id in broke:  # ended without dialling (a result like any other)
                self.io_in_flight += 1
                refused = _ending(self._flow(call, Audio(b"")).handle(flow.Unfunded(), now_ms=now))
                self._count(refused)
                task = asyncio.create_task(self._record_only(call.id, refused))
                self._calls[call.id] = task
                continue
            name = self._pick_line(call)
            assert name is not None  # leased no more than the free room
            state = self._lines[name]
            state.active += 1
            start_ms = max(now, state.next_slot_ms)
            state.next_slot_ms = start_ms + int(1000 / state.line.calls_per_second)
            self.io_in_flight += 1  # until the call's audio is loaded (_run_call)
            task = asyncio.create_task(self._run_call(call, name, start_ms - now))
            self._calls[call.id] = task
        return len(leased)

    async def _unfunded(self, leased: list[LeasedCall]) -> set[int]:
        """Calls whose account can no longer pay the first billing step (call_flow.unfunded):
        they end with 402 instead of being dialled."""
        if not leased:
            return set()
        spendable: dict[int, int] = {}
        async with self._store.db.read() as conn:
            for account_id in {c.account_id for c in leased}:
                account = await self._store.accounts.get_account(conn, account_id)
                spendable[account_id] = account.spendable_micros if account else 0
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

    def _pick_line(self, call: LeasedCall) -> str | None:
        """A line with room; a redial prefers a line other than the last attempt's."""
        free = [n for n, s in self._lines.items() if s.active < s.line.max_concurrent]
        if not free:
            return None
        others = [n for n in free if n != call.line]
        return (others or free)[0]

    # ---- one call --------------------------------------------------------------------
    async def _run_call(self, call: LeasedCall, line_name: str, delay_ms: int) -> None:
        state = self._lines[line_name]
        try:
            try:
                audio = await self._load_audio(call.audio_id)
            finally:
                self.io_in_flight -= 1
            if delay_ms > 0:
                await self._clock.sleep(delay_ms / 1000)
            ending = await self._talk(self._flow(call, audio), line_name, state.line, audio)
            self._count(ending)
            self.io_in_flight += 1
            try:
                await self._record(ending)
            finally:
                self.io_in_flight -= 1
        except Exception:
            log.exception("call %s failed inside the dispatcher", call.id)
        finally:
            state.active -= 1
            self._calls.pop(call.id, None)
            self._sessions.pop(call.id, None)
            self._loop.wake()

    async def _load_audio(self, audio_id: int) -> Audio:
        audio = self._audio.get(audio_id)
        if audio is not None:
            self._audio.move_to_end(audio_id)
            return audio
        async with self._store.db.read() as conn:
            found = await self._store.voice_files.get_audio(conn, audio_id)
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
        request = CallRequest(call.call.id, dial.callee, dial.caller, dial.attempt)
        try:
            session = await line.dial(request)
        except Exception as exc:  # a driver bug must not lose the call's record
            log.exception("line %s raised on dial of %s", line_name, call.call.id)
            return _ending(call.handle(flow.DialFailed(repr(exc)[:200]), now_ms=now()))
        self._sessions[call.call.id] = session
        todo = call.handle(flow.Dialled(), now_ms=now())
        events = session.events()
        pending: asyncio.Future[CallEvent] | None = None
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
                if pending is None:
                    pending = asyncio.ensure_future(_anext(events))
                event = await self._next(pending, max(0, wake_ms - now()))
                if event is None:  # the deadline passed
                    todo = call.handle(flow.Deadline(), now_ms=now())
                else:
                    pending = None
                    todo = call.handle(_flow_event(event), now_ms=now())
        finally:
            if pending is not None:
                pending.cancel()

    async def _next(self, pending: asyncio.Future[CallEvent], timeout_ms: int) -> CallEvent | None:
        """The next event, or None when ``timeout_ms`` passes first (on the injected clock)."""
        if pending.done():
            return _event_or_end(pending)
        timer = asyncio.ensure_future(self._clock.sleep(timeout_ms / 1000))
        try:
            waiters: set[asyncio.Future[Any]] = {pending, timer}
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if pending in done:
            return _event_or_end(pending)
        return None

    def _count(self, ending: Ending) -> None:
        r = ending.result
        self._metrics.calls.labels(r.line, str(r.sip_code)).inc()

    async def _record(self, ending: Ending) -> None:
        if isinstance(ending, flow.Redial):
            job = functools.partial(
                self._store.calls.redial,
                result=ending.result,
                owner=self.owner,
                next_attempt_ms=ending.at_ms,
                now_ms=self._clock.now_ms(),
            )
            await self._store.db.write(job)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._finals.append((CallFinal(ending.result, ending.charge), done))
        if not self._flushing:
            self._flushing = True
            asyncio.create_task(self._flush())  # noqa: RUF006 (awaited through ``done``)
        await done

    async def _flush(self) -> None:
        """Write every finished call queued so far in one job, until none is left."""
        try:
            while self._finals:
                batch, self._finals = self._finals, []
                job = functools.partial(
                    self._store.calls.finish,
                    finals=[f for f, _ in batch],
                    owner=self.owner,
                    now_ms=self._clock.now_ms(),
                )
                try:
                    await self._store.db.write(job)
                except Exception as exc:  # each call logs it; the reaper ends them as lost
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for _, fut in batch:
                    if not fut.done():
                        fut.set_result(None)
        finally:
            self._flushing = False


async def _anext(events: AsyncIterator[CallEvent]) -> CallEvent:
    return await anext(events)


def _event_or_end(fut: asyncio.Future[CallEvent]) -> CallEvent:
    """A finished iterator without ENDED (a driver bug) counts as an unavailable line."""
    try:
        return fut.result()
    except StopAsyncIteration:
        return CallEvent(CallEventKind.ENDED, 0, sip_code=SIP_SERVICE_UNAVAILABLE, reason="")


def _flow_event(event: CallEvent) -> flow.FlowEvent:
    kind, at = event.kind, event.at_ms
    if kind is CallEventKind.RINGING:
        return flow.Ringing(at)
    if kind is CallEventKind.ANSWERED:
        return flow.Answered(at)
    if kind is CallEventKind.DTMF:
        return flow.Dtmf(at, event.digit)
    if kind is CallEventKind.PLAYED:
        return flow.Played(at)
    return flow.Ended(at, event.sip_code, event.reason)


def _ending(commands: list[flow.Command]) -> Ending:
    """The one command of a flow that ended at once (refused, or its dial raised)."""
    (ending,) = commands
    assert isinstance(ending, flow.Finish | flow.Redial)
    return ending
