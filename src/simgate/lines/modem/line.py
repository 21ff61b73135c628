"""The modem line: one GSM modem per port, SMS in PDU mode (TS 27.005), reports, USSD.

Sending: each part through ``+CMGS`` (TS 27.005 §3.5.1); the modem numbers it (TP-MR) and
that number is written to the journal before the next part goes, so a status report finds
its message across a restart (lines/modem/journal.py). Parts of one message go out back to
back on their port. Reports come as +CDS or +CDSI, matched per port on TP-MR + recipient +
time window; one that overtakes its +CMGS answer waits ``REPORT_HOLD_S`` for it. Incoming
SMS (+CMT, +CMTI) are handed to the sink whole or as parts, which the sink keeps durably
and reassembles (services/inbound.py); parts that never complete are stored as they are
after ``reassembly_timeout``.

+CMS ERROR codes are classed by lines/modem/errors.py: a permanent one rejects the message,
any other is the port's failure (retry the message; the port is blocked and reset after
``fail_limit`` in a row).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from simgate.clock import Clock
from simgate.codecs import tpdu
from simgate.domain.queue import ReportHint
from simgate.lines.base import (
    Capability,
    InboundSink,
    IncomingPart,
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
from simgate.lines.modem.errors import is_permanent
from simgate.lines.modem.journal import MrJournal, SentPart
from simgate.lines.modem.keeper import PortStateKeeper, SaveState
from simgate.lines.modem.port import CommandFailed, ModemPort, NotOpen, NotSent, PortDown
from simgate.lines.modem.state import ModemState
from simgate.settings import ModemLineSettings

log = logging.getLogger(__name__)

__all__ = ["ModemLine"]

REPORT_HOLD_S = 5.0  # a report that came before its +CMGS answer waits this long for it
RETRY_AFTER_S = 5.0


class ModemLine:
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

    def __init__(self, name: str, cfg: ModemLineSettings, clock: Clock) -> None:
        self.name = name
        self.exclusive = cfg.exclusive
        self.port_rate_per_minute = cfg.rate_per_minute
        self._cfg = cfg
        self._clock = clock
        self._ports = [
            ModemPort(index=i, url=url, cfg=cfg, clock=clock, events=self)
            for i, url in enumerate(cfg.ports)
        ]
        self._sending = [asyncio.Lock() for _ in cfg.ports]  # parts of a message back to back
        self._concat_ref = [0] * len(cfg.ports)
        self._journal = MrJournal(cfg.journal)
        # Replaced by a fresh one each time a part is noted: a report waiting for its
        # +CMGS answer waits on the one it saw (lines/modem: REPORT_HOLD_S).
        self._noted = asyncio.Event()
        self._sink: InboundSink | None = None
        self._expiry: asyncio.Task[None] | None = None
        # Port state for the processes that do not drive this line (issue 16): kept by the
        # driving one, shown by the others (services/lines.py wires both).
        self._keeper = PortStateKeeper(
            line=name, clock=clock, signal_every_ms=round(cfg.signal_save_interval * 1000)
        )
        self._stored: dict[int, PortInfo] = {}

    # ---- Line ----------------------------------------------------------------------
    def ports(self) -> Sequence[PortInfo]:
        if self._sink is None:  # not driven here: what the driving process last kept
            return tuple(self._stored.get(p.index) or self._info(p) for p in self._ports)
        return tuple(self._info(p) for p in self._ports)

    # ---- port state across processes (services/lines.py: StatefulPortsLine) ---------
    @property
    def driven_here(self) -> bool:
        return self._sink is not None

    def keep_port_state(self, save: SaveState) -> None:
        """Hand each port's state to ``save`` when it changes (while driven here)."""
        self._keeper.keep_with(save)

    def show_stored(self, ports: Sequence[PortInfo]) -> None:
        """What ``ports()`` shows while this process does not drive the line."""
        self._stored = {p.index: p for p in ports if 0 <= p.index < len(self._ports)}

    def _keep_state(self) -> None:
        for p in self._ports:
            self._keeper.changed(self._info(p), blocked_until_ms=p.blocked_until_ms)

    def modem(self, index: int) -> ModemPort:
        return self._ports[index]

    def _info(self, p: ModemPort) -> PortInfo:
        s = p.state
        return PortInfo(
            index=p.index,
            name=f"gsm-1.{p.index + 1}",
            imsi=s.imsi,
            iccid=s.iccid,
            number=s.number,
            signal=s.signal,
            registered=s.registered and p.usable_link,
            operator=s.operator,
            locked=p.locked,
            imei=s.imei,
            reg=s.reg,
            blocked=self._clock.now_ms() < p.blocked_until_ms,
        )

    async def start(self, sink: InboundSink) -> None:
        self._sink = sink
        self._journal.open()
        self._keeper.start()
        for p in self._ports:
            p.start()
        self._expiry = asyncio.create_task(self._expire_parts(), name=f"modem-{self.name}-parts")

    async def stop(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry
            self._expiry = None
        for p in self._ports:
            await p.stop()
        self._journal.close()
        if self._sink is not None:  # nobody drives the modems now: shown as powered off
            off = [
                dataclasses.replace(self._info(p), reg="POWER_OFF", signal=0, registered=False)
                for p in self._ports
            ]
            await self._keeper.stop(off)
        self._sink = None

    async def submit(self, request: SubmitRequest) -> SubmitResult:
        if not 0 <= request.port < len(self._ports):
            return SubmitResult(Outcome.RETRY, error_text=f"no port {request.port}")
        port = self._ports[request.port]
        async with self._sending[request.port]:
            if not port.usable:
                return SubmitResult(
                    Outcome.RETRY,
                    error_text=f"port {request.port} not usable ({port.state.reg})",
                    retry_after_s=RETRY_AFTER_S,
                )
            result = await self._send(port, request)
        self._keep_state()  # a port blocked after failing shows so elsewhere at once
        return result

    async def _send(self, port: ModemPort, request: SubmitRequest) -> SubmitResult:
        self._concat_ref[port.index] = ref = (self._concat_ref[port.index] + 1) % 256
        try:
            parts = tpdu.submit_parts(
                request.text,
                request.encoding,
                recipient=request.recipient,
                ref=ref,
                srr=request.report_requested,
                vp=tpdu.vp_relative(self._cfg.validity_minutes),
                smsc=self._cfg.smsc,
            )
        except ValueError as exc:  # an address or text the PDU cannot carry
            return SubmitResult(Outcome.REJECTED, error_code=304, error_text=str(exc))
        refs: list[str] = []
        first_mr: int | None = None
        for i, part in enumerate(parts):
            if i == 0 and request.on_write is not None:
                request.on_write(request.message_id)  # from here on it may have left
            hint = ReportHint(request.message_id, request.lease_seq, i + 1, len(parts), port.index)
            # Noted before the PDU goes: if its answer is lost, a report may still settle it.
            intent = self._journal.intend(
                port=port.index,
                sent_ms=self._clock.now_ms(),
                hint=hint,
                recipient=request.recipient,
            )
            try:
                r = await port.command(
                    f"AT+CMGS={part.length}",
                    payload=part.pdu.hex().upper().encode("ascii"),
                    wait=self._cfg.send_timeout,
                )
            except NotSent as exc:
                self._journal.not_sent(intent)
                if not isinstance(exc, NotOpen):
                    port.failed(str(exc))
                return SubmitResult(
                    Outcome.RETRY if i == 0 else Outcome.UNKNOWN,
                    error_text=str(exc),
                    retry_after_s=RETRY_AFTER_S,
                    part_refs=tuple(refs),
                    first_ref=first_mr,
                )
            except PortDown as exc:  # written, never answered: it may have gone
                self._journal.lost(intent)
                port.failed(str(exc))
                return SubmitResult(
                    Outcome.UNKNOWN, error_text=str(exc), part_refs=tuple(refs), first_ref=first_mr
                )
            except CommandFailed as exc:
                self._journal.not_sent(intent)
                return self._refused(port, exc, sent=i, refs=refs, first_mr=first_mr)
            except BaseException:  # cancelled mid-send (shutdown): it may have gone
                self._journal.lost(intent)
                raise
            finally:  # reports holding for this answer look again (after the note below:
                # they run only once this task yields)
                self._noted.set()
                self._noted = asyncio.Event()
            mr = _mr(r.value("+CMGS"))
            sent = SentPart(port.index, mr, self._clock.now_ms(), hint, request.recipient)
            self._journal.note(sent)  # before the next part is written
            refs.append(sent.ref)
            first_mr = mr if first_mr is None else first_mr
        port.succeeded()
        return SubmitResult(Outcome.OK, part_refs=tuple(refs), first_ref=first_mr)

    def _refused(
        self,
        port: ModemPort,
        exc: CommandFailed,
        *,
        sent: int,
        refs: list[str],
        first_mr: int | None,
    ) -> SubmitResult:
        code = exc.response.code
        text = f"{exc.response.final} on port {port.index}"
        if sent:  # some parts went: the message can be neither completed nor resent whole
            port.failed(text)
            return SubmitResult(
                Outcome.UNKNOWN,
                error_code=code,
                error_text=text,
                part_refs=tuple(refs),
                first_ref=first_mr,
            )
        if is_permanent(code):
            port.succeeded()  # the port worked; the message is wrong
            return SubmitResult(Outcome.REJECTED, error_code=code, error_text=text)
        port.failed(text)
        return SubmitResult(
            Outcome.RETRY, error_code=code, error_text=text, retry_after_s=RETRY_AFTER_S
        )

    # ---- PortEvents ----------------------------------------------------------------
    async def pdu_arrived(self, port: int, *, report: bool, pdu: bytes) -> None:
        try:
            if report:
                await self._report(port, tpdu.decode_status_report(pdu))
            else:
                await self._incoming(port, tpdu.decode_deliver(pdu))
        except tpdu.TpduError as exc:
            log.warning(
                "modem line %s port %d: unreadable PDU %s: %s", self.name, port, pdu.hex(), exc
            )

    async def _report(self, port: int, sr: tpdu.StatusReport) -> None:
        if not sr.final:
            return  # TP-ST 0x20-0x3F: the SC is still trying (TS 23.040 §9.2.3.15)
        sent = await self._match(port, sr)
        if sent is None:
            log.info(
                "modem line %s port %d: report for TP-MR %d to %s matches no part",
                self.name,
                port,
                sr.mr,
                sr.recipient,
            )
            return
        code = 0 if sr.status <= 0x1F else sr.status
        done_ms = int(sr.discharge.timestamp() * 1000)
        assert self._sink is not None
        await self._sink.delivery_reports(
            self.name, [LineReport(sent.ref, code, done_ms, hint=sent.hint)]
        )
        self._journal.settled([sent.ref])

    async def _match(self, port: int, sr: tpdu.StatusReport) -> SentPart | None:
        """The part a report is for. One that overtook its +CMGS answer waits for it:
        ``REPORT_HOLD_S``, and as long as a part to that recipient on that port awaits its
        answer (bounded by the send timeout). Then a part whose answer was lost
        (lines/modem/journal.py: intents)."""
        window_ms = round(self._cfg.report_window * 1000)
        start = self._clock.now_ms()
        hold_until = start + round(REPORT_HOLD_S * 1000)
        give_up = hold_until + round(2 * self._cfg.send_timeout * 1000)
        while True:
            now = self._clock.now_ms()
            sent = self._journal.match(
                port=port, mr=sr.mr, recipient=sr.recipient, now_ms=now, window_ms=window_ms
            )
            if sent is not None:
                return sent
            awaiting = self._journal.awaiting(port=port, recipient=sr.recipient)
            if now >= give_up or (now >= hold_until and not awaiting):
                return self._journal.match_lost(
                    port=port,
                    mr=sr.mr,
                    recipient=sr.recipient,
                    scts_ms=int(sr.scts.timestamp() * 1000),
                    now_ms=now,
                    window_ms=window_ms,
                )
            until = hold_until if now < hold_until else give_up
            alarm = self._clock.alarm((until - now) / 1000)
            waiter: asyncio.Future[Any] = asyncio.ensure_future(self._noted.wait())
            try:
                racing: set[asyncio.Future[Any]] = {waiter, alarm.future}
                await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                alarm.cancel()

    async def _incoming(self, port: int, d: tpdu.Deliver) -> None:
        assert self._sink is not None
        now = self._clock.now_ms()
        number = self._ports[port].state.number
        if d.concat is not None and d.concat.total > 1:
            part = IncomingPart(
                port=port,
                sender=d.sender,
                recipient=number,
                ref=d.concat.ref,
                total=d.concat.total,
                seq=d.concat.seq,
                data_coding=d.alphabet,
                data=d.body,
                received_ms=now,
                smsc=d.smsc,
            )
            await self._sink.incoming_parts(self.name, [part])
            return
        sms = IncomingSms(
            port=port, sender=d.sender, recipient=number, text=d.text, received_ms=now, smsc=d.smsc
        )
        await self._sink.incoming(self.name, [sms])

    async def state_changed(self, port: int, before: ModemState, after: ModemState) -> None:
        self._keep_state()
        if before.registered != after.registered and self._sink is not None:
            await self._sink.port_changed(self.name, port, after.registered)

    async def _expire_parts(self) -> None:
        timeout_ms = round(self._cfg.reassembly_timeout * 1000)
        period = min(5.0, self._cfg.reassembly_timeout / 4)
        while True:
            await self._clock.sleep(period)
            self._keep_state()  # a signal change held back by the throttle, once due
            assert self._sink is not None
            try:
                before = self._clock.now_ms() - timeout_ms
                await self._sink.expire_parts(self.name, started_before_ms=before)
            except Exception as exc:  # the database away: next round
                log.warning("modem line %s: expiring parts: %s", self.name, exc)

    # ---- USSD (lines.base.UssdLine) ------------------------------------------------
    async def send_ussd(self, port: int, text: str) -> UssdResult:
        p = self._ports[port]
        if not p.usable:
            return UssdResult(UssdStatus.NOT_REGISTERED)
        if self._sending[port].locked():
            return UssdResult(UssdStatus.BUSY)
        try:
            reply = await p.ussd(text, wait=self._cfg.command_timeout)
        except (PortDown, CommandFailed):
            return UssdResult(UssdStatus.BUSY)
        return UssdResult(UssdStatus.SENT, reply)

    async def cancel_ussd(self, port: int) -> UssdResult:
        p = self._ports[port]
        if not p.usable:
            return UssdResult(UssdStatus.NOT_REGISTERED)
        with contextlib.suppress(PortDown, CommandFailed):
            await p.command("AT+CUSD=2")
        return UssdResult(UssdStatus.SENT)

    # ---- port control (lines.base.PortControlLine) ---------------------------------
    async def control_port(self, port: int, action: PortAction) -> bool:
        p = self._ports[port]
        if action is PortAction.LOCK or action is PortAction.UNLOCK:
            p.locked = action is PortAction.LOCK
        elif action is PortAction.RESET:
            p.blocked_until_ms = 0
            p.request_reset()
        else:  # TS 27.007 §8.2: +CFUN=0 minimum functionality (radio off), 1 full
            fun = 1 if action is PortAction.POWER_ON else 0
            try:
                await p.command(f"AT+CFUN={fun}")
            except (PortDown, CommandFailed):
                return False
            p.request_poll()
        self._keep_state()
        return True


def _mr(value: str | None) -> int:
    """``+CMGS: <mr>[,<scts>]`` → the TP-MR (0 when a modem leaves it out)."""
    head = (value or "").split(",")[0].strip()
    return int(head) % 256 if head.isdigit() else 0
