"""The call dispatcher: lease queued calls, pace them onto voice lines, run each call, bill it.

The driver (lines/voice.py) only places calls and reports events; the policy lives here
(spec §1.11-§1.12): calls per second and concurrent calls per line, maxRingingTime (cancel
after it), maxDuration (hang up that long after the answer), loopCount plays of the audio,
recallCount redials every recallInterval when unanswered (only the last attempt is final and
pushed, spec §1.11), and the charge at hang-up.

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
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from simgate.clock import Clock
from simgate.domain.billing import first_step_cost, voice_charge
from simgate.domain.calls import (
    SIP_CANCELLED,
    SIP_PAYMENT_REQUIRED,
    SIP_SERVICE_UNAVAILABLE,
    Audio,
    CallFinal,
    CallResult,
    LeasedCall,
    sip_reason,
)
from simgate.lines.voice import Call, CallEvent, CallEventKind, CallRequest, VoiceLine
from simgate.metrics import Metrics
from simgate.services.calls import CallService
from simgate.settings import VoiceSettings, WorkerSettings

log = logging.getLogger(__name__)

AUDIO_CACHE = 64
HANGUP_GRACE_S = 10.0  # a line that does not confirm our hang-up in this long is given up on
# Redial only when nobody answered (spec §1.11 "recall"): busy, no answer, unreachable.
REDIAL_CODES = frozenset({408, 480, 486, 487, 503, 603})


@dataclass
class _LineState:
    line: VoiceLine
    active: int = 0
    next_slot_ms: int = 0  # calls-per-second pacing: the earliest start of the next dial


@dataclass
class _CallTimes:
    call_ms: int
    ringing_ms: int | None = None
    answer_ms: int | None = None
    dtmf: list[str] = field(default_factory=list)


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
        self._lines = {name: _LineState(line) for name, line in lines.items()}
        self._cfg = settings
        self._worker = worker
        self._clock = clock
        self._metrics = metrics
        self.owner = owner or f"calls-{uuid.uuid4().hex[:12]}"
        self._audio: OrderedDict[int, Audio] = OrderedDict()
        self._calls: dict[int, asyncio.Task[None]] = {}
        self._sessions: dict[int, Call] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
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
        self._stopping.clear()
        await self.reap()  # calls left CALLING by a crashed predecessor
        self._task = asyncio.create_task(self._run(), name="call-dispatcher")

    async def stop(self) -> None:
        """Lease no more; hang up the calls in progress and record how they ended."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for session in list(self._sessions.values()):
            with contextlib.suppress(Exception):
                await session.hangup()
        if self._calls:
            await asyncio.gather(*self._calls.values(), return_exceptions=True)

    @property
    def active(self) -> int:
        return len(self._calls)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                now = self._clock.now_ms()
                if now - self._reaped_at >= self._worker.reaper_interval_seconds * 1000:
                    await self.reap()
                await self.renew_if_due()
                started = await self.run_once()
            except Exception:
                log.exception("call dispatch cycle failed")
                started = 0
            if started == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._cfg.idle_poll_seconds)

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
    def _free(self) -> int:
        return sum(max(0, s.line.max_concurrent - s.active) for s in self._lines.values())

    async def run_once(self) -> int:
        """Lease as many due calls as the lines have room for and start them."""
        room = min(self._free(), self._cfg.batch_size)
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
                result = CallResult(
                    call.id, "", now, None, None, now, SIP_PAYMENT_REQUIRED, sip_reason(402)
                )
                self._metrics.calls.labels("", str(SIP_PAYMENT_REQUIRED)).inc()
                task = asyncio.create_task(self._record_only(call, result))
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
        """Calls whose account can no longer pay the first billing step (spec §1.11 -10 was
        checked at accept; the balance may have gone since, e.g. by earlier calls of a big
        group): they end with 402 instead of being dialled. Checked per call in lease order,
        so a nearly empty account still places the calls it can pay for."""
        if not leased:
            return set()
        spendable = await self._service.spendable({c.account_id for c in leased})
        broke: set[int] = set()
        for call in leased:
            p = call.pricing
            need = max(1, first_step_cost(p.rate_micros, p.bill_period, p.quote_exchange_micros))
            if spendable[call.account_id] < need:
                broke.add(call.id)
            else:
                spendable[call.account_id] -= need
        return broke

    async def _record_only(self, call: LeasedCall, result: CallResult) -> None:
        try:
            await self._record(call, result)
        except Exception:
            log.exception("call %s could not be recorded", call.id)
        finally:
            self.io_in_flight -= 1
            self._calls.pop(call.id, None)

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
            result = await self._talk(call, line_name, state.line, audio)
            self.io_in_flight += 1
            try:
                await self._record(call, result)
            finally:
                self.io_in_flight -= 1
        except Exception:
            log.exception("call %s failed inside the dispatcher", call.id)
        finally:
            state.active -= 1
            self._calls.pop(call.id, None)
            self._sessions.pop(call.id, None)
            self._wake.set()

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

    async def _talk(
        self, call: LeasedCall, line_name: str, line: VoiceLine, audio: Audio
    ) -> CallResult:
        times = _CallTimes(call_ms=self._clock.now_ms())
        try:
            session = await line.dial(
                CallRequest(call.id, call.callee, call.display_num, call.recalls_done)
            )
        except Exception as exc:  # a driver bug must not lose the call's record
            log.exception("line %s raised on dial of %s", line_name, call.id)
            return self._ended(call, line_name, times, SIP_SERVICE_UNAVAILABLE, repr(exc)[:200])
        self._sessions[call.id] = session
        talk_cap_s = call.max_duration_s or self._cfg.max_call_seconds
        events = session.events()
        pending: asyncio.Future[CallEvent] | None = None
        hung_up_at: int | None = None
        cancelled = False
        while True:
            now = self._clock.now_ms()
            if hung_up_at is not None:
                deadline = hung_up_at + int(HANGUP_GRACE_S * 1000)
            elif times.answer_ms is None:
                deadline = times.call_ms + call.max_ringing_s * 1000
            else:
                deadline = times.answer_ms + talk_cap_s * 1000
            if pending is None:
                pending = asyncio.ensure_future(_anext(events))
            event = await self._next(pending, max(0, deadline - now))
            if event is None:  # a deadline passed
                if hung_up_at is not None:  # the line never confirmed: end it ourselves
                    pending.cancel()
                    code = 200 if times.answer_ms is not None else SIP_CANCELLED
                    return self._ended(call, line_name, times, code, "", at_ms=hung_up_at)
                cancelled = times.answer_ms is None
                # The call ends for billing at the limit itself: the line's CANCEL/BYE round
                # trip (or a late wake-up of this task) is not talk time (§1.11 maxDuration).
                hung_up_at = min(deadline, self._clock.now_ms())
                await session.hangup()
                continue
            pending = None
            if event.kind is CallEventKind.RINGING:
                times.ringing_ms = times.ringing_ms or event.at_ms
            elif event.kind is CallEventKind.ANSWERED:
                times.answer_ms = event.at_ms
                times.ringing_ms = times.ringing_ms or event.at_ms
                await session.play(audio, call.loop_count)
            elif event.kind is CallEventKind.DTMF:
                if len(times.dtmf) < 32:
                    times.dtmf.append(event.digit)
            elif event.kind is CallEventKind.PLAYED:
                if hung_up_at is None:
                    # The audio ended: so did the call, for billing. Never later than the audio
                    # itself after the answer: a slow start of the playback is not the
                    # customer's talk time.
                    length = call.loop_count * audio.duration_ms
                    answered = times.answer_ms if times.answer_ms is not None else event.at_ms
                    hung_up_at = min(event.at_ms, answered + length)
                    await session.hangup()
            elif event.kind is CallEventKind.ENDED:
                code = event.sip_code
                reason = event.reason
                if cancelled and times.answer_ms is None:
                    code, reason = SIP_CANCELLED, "no answer"
                ended = event.at_ms if hung_up_at is None else min(event.at_ms, hung_up_at)
                return self._ended(call, line_name, times, code, reason, at_ms=ended)

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

    def _ended(
        self,
        call: LeasedCall,
        line_name: str,
        times: _CallTimes,
        code: int,
        reason: str,
        *,
        at_ms: int | None = None,
    ) -> CallResult:
        hangup = at_ms if at_ms is not None else self._clock.now_ms()
        answered = times.answer_ms is not None
        if answered:
            code = 200  # an established call is 200 whoever hung up (spec §7)
        result = CallResult(
            call_id=call.id,
            line=line_name,
            call_ms=times.call_ms,
            ringing_ms=times.ringing_ms,
            answer_ms=times.answer_ms,
            hangup_ms=max(hangup, times.answer_ms or times.call_ms),
            sip_code=code,
            reason=(reason or sip_reason(code)) if not answered else "success",
            dtmf="".join(times.dtmf) if answered else "",
        )
        self._metrics.calls.labels(line_name, str(code)).inc()
        return result

    async def _record(self, call: LeasedCall, result: CallResult) -> None:
        now = self._clock.now_ms()
        redial = (
            not result.answered
            and result.sip_code in REDIAL_CODES
            and call.recalls_done < call.recall_count
        )
        if redial:
            await self._service.redial(
                result=result,
                owner=self.owner,
                next_attempt_ms=now + call.recall_interval_s * 1000,
                now_ms=now,
            )
            return
        p = call.pricing
        charge = voice_charge(
            answered=result.answered,
            duration_s=result.duration_s,
            rate_micros=p.rate_micros,
            bill_period=p.bill_period,
            currency=p.currency,
            quote_exchange_micros=p.quote_exchange_micros,
        )
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._finals.append((CallFinal(result, charge), done))
        if not self._flushing:
            self._flushing = True
            asyncio.create_task(self._flush())  # noqa: RUF006 (awaited through ``done``)
        await done

    async def _flush(self) -> None:
        """Write every finished call queued so far in one job, until none is left."""
        try:
            while self._finals:
                batch, self._finals = self._finals, []
                try:
                    await self._service.finish(
                        finals=[f for f, _ in batch], owner=self.owner, now_ms=self._clock.now_ms()
                    )
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
