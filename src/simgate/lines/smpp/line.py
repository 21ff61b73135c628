"""The SMPP line: binds, window, rate, outcomes, receipts and incoming SMS (issue 5).

Outcomes of ``submit`` (spec §7 "never resent blindly"):

* every part answered OK → ``OK`` with the normalised SMSC ids as ``part_refs``;
* the first part refused with a throttling status (ESME_RTHROTTLED, ESME_RMSGQFUL) → the
  line pauses for ``throttle_pause`` and the message is ``RETRY`` after that pause; other
  retryable statuses → ``RETRY`` (dispatcher backoff); the rest → ``REJECTED``;
* a part written but never answered (response timeout, connection lost with it in the
  window) → ``UNKNOWN``: it may have left, so it is not resent;
* no bind within ``bind_wait`` → ``RETRY`` (nothing was written).

Parts after the first are already committed to leave: a refusal there is retried in place
(after the pause); if it still fails, the part gets a synthetic ref and a failed report, so
the message ends FAILED by the store's worst-part rule (spec §7) instead of hanging.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simgate.clock import Clock
from simgate.codecs.smpp import (
    CommandStatus,
    Pdu,
    SmppEncodeError,
    SmppSessionError,
    StatusClass,
    SubmitSm,
    SubmitSmResp,
    classify_status,
    is_throttling,
    normalize_message_id,
)
from simgate.domain.queue import ReportHint
from simgate.lines.base import (
    Capability,
    InboundSink,
    LineReport,
    Outcome,
    PortInfo,
    SubmitRequest,
    SubmitResult,
)
from simgate.lines.smpp.bind import Bind, BindKind, LinkLost, ResponseTimedOut, _NotWritten
from simgate.lines.smpp.deliveries import Deliveries
from simgate.lines.smpp.outbound import plan_parts
from simgate.lines.smpp.receipts import ReceiptMatcher, part_refs
from simgate.lines.smpp.refs import SubmitRefs, Submitted
from simgate.settings import SmppLineSettings

log = logging.getLogger(__name__)

__all__ = ["SmppLine"]

_PART_RETRIES = 3


@dataclass(frozen=True, slots=True)
class _Sent:
    kind: str  # ok | throttled | retry | rejected | unknown | nobind
    ref: str = ""
    status: int = 0
    text: str = ""


class SmppLine:
    capabilities = frozenset(
        {Capability.SMS, Capability.REPORTS, Capability.INBOUND, Capability.WRITE_MARKS}
    )

    def __init__(self, name: str, settings: SmppLineSettings, clock: Clock) -> None:
        self.name = name
        self.exclusive = settings.exclusive
        self.port_rate_per_minute = settings.port_rate_per_minute
        self.cfg = settings
        self.clock = clock
        kinds = (
            [BindKind.TRX] * settings.transceivers
            + [BindKind.TX] * settings.transmitters
            + [BindKind.RX] * settings.receivers
        )
        self.binds = [
            Bind(name=f"{name}/{i}", kind=k, cfg=settings, clock=clock, handler=self)
            for i, k in enumerate(kinds)
        ]
        self.matcher = ReceiptMatcher(settings.receipt_ids)
        self.refs = SubmitRefs(settings.refs_journal)  # submit ids → message (README)
        self.deliveries = Deliveries(
            line=name,
            cfg=settings,
            clock=clock,
            matcher=self.matcher,
            in_flight=lambda: any(b.inflight for b in self.binds),
            refs=self.refs,
        )
        self._sink: InboundSink | None = None
        self._ref = 0
        self._waiters: collections.deque[asyncio.Future[Bind | None]] = collections.deque()
        self._paused_until = 0.0
        self._next_send = 0.0
        self._up = False
        self._up_event = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ports: tuple[PortInfo] | None = None

    # ---- Line protocol -----------------------------------------------------------------
    def ports(self) -> Sequence[PortInfo]:
        # The dispatcher asks for every message it routes here: built once per change of
        # ``_up`` (kept by ``_changed`` as binds come and go), not per call.
        if self._ports is None or self._ports[0].registered != self._up:
            self._ports = self._port_info(self._up)
        return self._ports

    def _port_info(self, up: bool) -> tuple[PortInfo]:
        return (
            PortInfo(
                index=0,
                name=f"smpp-{self.name}",
                imsi="",
                iccid="",
                number="",
                signal=31 if up else 0,
                registered=up,
                operator=f"{self.cfg.host}:{self.cfg.port}",
            ),
        )

    async def start(self, sink: InboundSink) -> None:
        self._sink = sink
        self.refs.open()
        for smsc_id, _ in self.refs.covers():  # answered before a restart: still matched
            self.matcher.remember(smsc_id)
        for bind in self.binds:
            bind.start()
        self.deliveries.start(sink)
        with contextlib.suppress(TimeoutError):  # start anyway: binds keep retrying
            await asyncio.wait_for(self._up_event.wait(), self.cfg.bind_wait)

    async def stop(self) -> None:
        await asyncio.gather(*(b.stop() for b in self.binds))
        if self._tasks:  # port changes announced while stopping are still recorded
            await asyncio.wait(list(self._tasks), timeout=2)
        await self.deliveries.stop()
        self.refs.close()

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        ref = self._ref
        self._ref = (ref + 1) % 256
        try:
            plan = plan_parts(request, self.cfg, ref)
        except ValueError as exc:
            return SubmitResult(Outcome.REJECTED, error_text=f"cannot encode: {exc}")
        payload = len(plan.pdus) == 1 and plan.parts > 1
        # The worker's write journal hears of the message when its first part may leave
        # (WRITE_MARKS), not while it waits for a bind, a window slot or the pace.
        on_write = request.on_write
        mark = None if on_write is None else functools.partial(on_write, request.message_id)
        first = await self._send(plan.pdus[0], mark)
        if first.kind != "ok":
            return self._not_sent(first)
        hint = ReportHint(request.message_id, request.lease_seq, 1, plan.parts, request.port)
        if payload:
            self.refs.note([Submitted(first.ref, hint, plan.parts)])
            return SubmitResult(Outcome.OK, part_refs(first.ref, plan.parts), first_ref=ref)
        rest = await asyncio.gather(*(self._send_later(p) for p in plan.pdus[1:]))
        refs = [first.ref]
        answered = [Submitted(first.ref, hint)]
        failed: list[LineReport] = []
        for i, sent in enumerate(rest, start=2):
            if sent.kind == "ok":
                refs.append(sent.ref)
                answered.append(Submitted(sent.ref, hint._replace(part=i)))
            elif sent.kind != "unknown":  # refused for good after the first part left: failed
                synthetic = f"{first.ref}!{i}"
                refs.append(synthetic)
                code = sent.status & 0xFF or 0xFF
                failed.append(
                    LineReport(synthetic, code, self.clock.now_ms(), hint._replace(part=i))
                )
        self.refs.note(answered)  # before anyone hears of the answers (README "Crash safety")
        unknown = [i for i, sent in enumerate(rest, start=2) if sent.kind == "unknown"]
        if unknown:
            i = unknown[0]
            return SubmitResult(
                Outcome.UNKNOWN, error_text=f"part {i}/{plan.parts}: {rest[i - 2].text}"
            )
        if failed and self._sink is not None:
            await self._sink.delivery_reports(self.name, failed)  # kept as orphans till recorded
        return SubmitResult(Outcome.OK, tuple(refs), first_ref=ref)

    def _not_sent(self, sent: _Sent) -> SubmitResult:
        status = sent.status or None
        if sent.kind == "throttled":
            return SubmitResult(
                Outcome.RETRY, error_code=status, error_text=sent.text,
                retry_after_s=self.cfg.throttle_pause,
            )  # fmt: skip
        if sent.kind in ("retry", "nobind"):
            return SubmitResult(Outcome.RETRY, error_code=status, error_text=sent.text)
        if sent.kind == "unknown":
            return SubmitResult(Outcome.UNKNOWN, error_text=sent.text)
        return SubmitResult(Outcome.REJECTED, error_code=status, error_text=sent.text)

    # ---- sending one PDU ---------------------------------------------------------------
    async def _send_later(self, pdu: SubmitSm) -> _Sent:
        sent = await self._send(pdu)
        for attempt in range(_PART_RETRIES):
            if sent.kind not in ("throttled", "retry", "nobind"):
                break
            await self.clock.sleep(self.cfg.throttle_pause * 2**attempt)
            sent = await self._send(pdu)
        return sent

    async def _send(self, pdu: SubmitSm, mark: Callable[[], None] | None = None) -> _Sent:
        deadline = asyncio.get_running_loop().time() + self.cfg.bind_wait
        while True:
            bind = await self._acquire(deadline)
            if bind is None:
                return _Sent("nobind", text="no SMPP bind available")
            try:
                if self.cfg.tps > 0 or self._paused_until:
                    await self._pace()
                if mark is not None:
                    mark()
                response = await bind.send(pdu)
            except (_NotWritten, SmppSessionError):
                continue  # the bind dropped before the write: nothing left, try another
            except SmppEncodeError as exc:
                return _Sent("rejected", text=f"cannot encode submit_sm: {exc}")
            except ResponseTimedOut:
                return _Sent("unknown", text="no submit_sm_resp in time")
            except LinkLost as exc:
                return _Sent("unknown", text=f"connection lost before submit_sm_resp: {exc}")
            finally:
                self._release(bind)
            return self._judge(response)

    def _judge(self, response: Pdu) -> _Sent:
        status = response.command_status
        if response.ok and isinstance(response, SubmitSmResp):
            ref = normalize_message_id(response.message_id)
            if not ref:
                return _Sent("ok", ref=f"?{id(response)}", text="SMSC gave no message id")
            self.matcher.remember(ref)
            self.deliveries.id_seen()
            return _Sent("ok", ref=ref)
        name = _status_name(status)
        if is_throttling(status):
            self._paused_until = max(self._paused_until, self._now() + self.cfg.throttle_pause)
            return _Sent("throttled", status=status, text=name)
        klass = classify_status(status, extra_retryable=self.cfg.extra_retryable)
        if klass is StatusClass.RETRYABLE or status == CommandStatus.ESME_ROK:  # ok nack
            return _Sent("retry", status=status, text=name)
        return _Sent("rejected", status=status, text=name)

    def _now(self) -> float:
        return self.clock.now_ms() / 1000

    async def _pace(self) -> None:
        """Honour a throttle pause, then the TPS cap (evenly spaced sends)."""
        now = self._now()
        if self._paused_until > now:
            await self.clock.sleep(self._paused_until - now)
        if self.cfg.tps > 0:
            now = self._now()
            at = max(now, self._next_send)
            self._next_send = at + 1 / self.cfg.tps
            if at > now:
                await self.clock.sleep(at - now)

    # ---- window slots over the binds ---------------------------------------------------
    def _free_bind(self) -> Bind | None:
        best: Bind | None = None
        for b in self.binds:
            usable = b.kind.sends and b.bound and b.inflight < self.cfg.window
            if usable and (best is None or b.inflight < best.inflight):
                best = b
        return best

    async def _acquire(self, deadline: float) -> Bind | None:
        """A submit slot on a bound sending bind; None when none comes up by ``deadline``.

        A freed slot is handed straight to the oldest waiter (no re-check, no re-queue);
        waiters woken with None (a bind came up or went down) look again.
        """
        bind = self._free_bind()
        if bind is not None:
            bind.inflight += 1
            return bind
        loop = asyncio.get_running_loop()
        while True:
            fut: asyncio.Future[Bind | None] = loop.create_future()
            self._waiters.append(fut)
            timeout = None if self._up else deadline - loop.time()
            if timeout is not None and timeout <= 0:
                fut.cancel()
                return None
            try:
                handed = await asyncio.wait_for(fut, timeout) if timeout else await fut
            except TimeoutError:
                handed = fut.result() if fut.done() and not fut.cancelled() else None
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled() and fut.result() is not None:
                    self._release(fut.result())  # handed over as we were cancelled
                raise
            if handed is not None:
                return handed  # its inflight count was kept for us
            bind = self._free_bind()
            if bind is not None:
                bind.inflight += 1
                return bind

    def _release(self, bind: Bind | None) -> None:
        if bind is None:
            return
        if bind.bound:
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(bind)  # the slot changes hands
                    return
        bind.inflight -= 1
        self._wake(1)

    def _wake(self, n: int) -> None:
        while n > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                n -= 1

    def _sending_up(self) -> bool:
        return any(b.bound and b.kind.sends for b in self.binds)

    # ---- BindHandler -------------------------------------------------------------------
    def bound(self, bind: Bind) -> None:
        self._wake(self.cfg.window)
        self._changed()

    def unbound(self, bind: Bind) -> None:
        self._wake(len(self._waiters))  # waiters on a full window look again (other binds)
        self._changed()

    def _changed(self) -> None:
        up = self._sending_up()
        if up:
            self._up_event.set()
        else:
            self._up_event.clear()
        if up != self._up:
            self._up = up
            if self._sink is not None:
                task = asyncio.create_task(self._sink.port_changed(self.name, 0, up))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                task.add_done_callback(_log_failure)

    async def request(self, bind: Bind, pdu: Pdu) -> int:
        """A deliver_sm/data_sm from the SMSC; the answer is sent after this returns."""
        return await self.deliveries.handle(pdu)


def _status_name(status: int) -> str:
    try:
        return CommandStatus(status).name
    except ValueError:
        return f"status {status:#x}"


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("smpp port change not recorded: %s", task.exception())
