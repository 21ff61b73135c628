"""One modem: its serial connection, the AT engine, one command at a time, its state.

A supervisor task opens the port (a tty or ``socket://`` through serialx, locked for this
process: a port another program holds gets an error naming it), initialises the modem
(TS 27.007/27.005: echo off, numeric errors, PDU mode, +CNMI routing), enters the PIN,
reads the SIM's ids, and polls its health. A modem that goes away (EOF, unplugged, a command
unanswered) is closed and reopened with backoff; one that fails ``fail_limit`` times in a
row is blocked for ``block_seconds`` and reset (``+CFUN=1,1``, a settle delay, re-init), as
smstools does. Unsolicited codes go to a second task, which may issue commands (+CMGR) of
its own through the same one-at-a-time lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
from typing import Any, Protocol

import serialx

from simgate.clock import Clock
from simgate.codecs.at import AtEngine, Noise, Response, Timeout, Urc
from simgate.lines.modem.state import (
    ModemState,
    cops_operator,
    cpin_state,
    creg_state,
    csq_signal,
    iccid_of,
)
from simgate.settings import ModemLineSettings

log = logging.getLogger(__name__)

__all__ = [
    "CommandFailed",
    "ModemPort",
    "NotOpen",
    "NotSent",
    "PinRefused",
    "PortDown",
    "PortEvents",
]

# TS 27.005 §3.4.1 +CNMI=2,2,0,1,0: new SMS straight to us (+CMT), status reports too
# (+CDS); modems that refuse it get 2,1,0,2,0 (stored, announced as +CMTI / +CDSI).
CNMI_INLINE = "AT+CNMI=2,2,0,1,0"
CNMI_STORED = "AT+CNMI=2,1,0,2,0"
# TS 27.005 §3.2.1 +CSMS=1 (phase 2+): each +CMT/+CDS must be acknowledged with +CNMA
# (§3.4.4) or the network delivers it again. Inline delivery only where the modem has it:
# we acknowledge once the sink committed, so a sink that fails loses nothing. A modem
# without phase 2+ acknowledges by itself: an inline SMS would be gone if our commit
# failed, so it gets stored delivery (read, committed, then deleted).
CSMS_PHASE2 = "AT+CSMS=1"
CNMA_ACK = "AT+CNMA"


class PortDown(Exception):
    """The modem is gone or hung: the supervisor closes and reopens it."""


class NotSent(PortDown):
    """The modem hung before it asked for the PDU: nothing of the message was written."""


class NotOpen(NotSent):
    """The port is not open right now: nothing was written."""


class PinRefused(Exception):
    """The SIM wants a PIN we do not have, or refused ours: this port waits for the operator
    (a reset retries; never on our own, as three wrong tries lock the SIM)."""


class CommandFailed(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(f"{response.command}: {response.final}")
        self.response = response


class PortEvents(Protocol):
    """What a port tells its line (lines/modem/line.py)."""

    async def pdu_arrived(self, port: int, *, report: bool, pdu: bytes) -> None:
        """An SMS-DELIVER or SMS-STATUS-REPORT; returns once it is committed."""
        ...

    async def state_changed(self, port: int, before: ModemState, after: ModemState) -> None: ...


class ModemPort:
    def __init__(
        self, *, index: int, url: str, cfg: ModemLineSettings, clock: Clock, events: PortEvents
    ) -> None:
        self.index = index
        self.url = url
        self._cfg = cfg
        self._clock = clock
        self._events = events
        self.state = ModemState()
        self.locked = False  # the operator's set_port_info lock
        self.blocked_until_ms = 0
        self.failures = 0  # in a row
        self.last_error = ""
        self._engine = AtEngine()
        self._lock = asyncio.Lock()
        self._reply: asyncio.Future[Response] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._urcs: asyncio.Queue[Urc] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._urc_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._reset_wanted = False
        self._ready = False
        self._ussd: asyncio.Future[str] | None = None
        self._acks = False  # +CSMS=1 with inline delivery: each +CMT/+CDS wants a +CNMA

    # ---- what the line asks --------------------------------------------------------
    @property
    def usable_link(self) -> bool:
        """Open and initialised."""
        return self._ready and self._writer is not None

    @property
    def usable(self) -> bool:
        return (
            self.usable_link
            and self.state.registered
            and not self.locked
            and self._clock.now_ms() >= self.blocked_until_ms
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"modem-{self.url}")
        self._urc_task = asyncio.create_task(self._handle_urcs(), name=f"modem-{self.url}-urc")

    async def stop(self) -> None:
        for task in (self._task, self._urc_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._urc_task = None
        await self._close()

    def succeeded(self) -> None:
        self.failures = 0

    def failed(self, why: str) -> None:
        """A failure of the port (not of one message): block and reset after too many."""
        self.failures += 1
        self.last_error = why
        if self.failures >= self._cfg.fail_limit:
            log.warning(
                "modem %s: %d failures in a row (%s): blocked for %ss and reset",
                self.url,
                self.failures,
                why,
                self._cfg.block_seconds,
            )
            self.blocked_until_ms = self._clock.now_ms() + round(self._cfg.block_seconds * 1000)
            self.failures = 0
            self.request_reset()

    def request_reset(self) -> None:
        self._reset_wanted = True
        self._wake.set()

    def request_poll(self) -> None:
        self._wake.set()

    async def command(
        self, command: str, *, wait: float | None = None, payload: bytes | None = None
    ) -> Response:
        """Send one command and wait for its final result. A final error raises
        CommandFailed; no answer in time (or the port gone) raises PortDown."""
        async with self._lock:
            return await self._command(command, wait=wait, payload=payload)

    async def _command(
        self, command: str, *, wait: float | None, payload: bytes | None
    ) -> Response:
        if self._writer is None:
            raise NotOpen(f"{self.url} is not open")
        wait = self._cfg.command_timeout if wait is None else wait
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Response] = loop.create_future()
        self._reply = reply
        try:
            self._engine.send(
                command,
                now_ms=self._clock.now_ms(),
                timeout_ms=round(wait * 1000),
                payload=payload,
            )
            self._flush()
            alarm = self._clock.alarm(wait)
            try:
                racing: set[asyncio.Future[Any]] = {reply, alarm.future}
                await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
            finally:
                alarm.cancel()
        finally:
            self._reply = None
        if not reply.done():
            reply.cancel()
            unsent = self._engine.payload_pending  # no "> " came: the PDU never left us
            deadline = self._engine.deadline_ms or 0
            self._engine.tick(max(self._clock.now_ms(), deadline))
            # A hung modem: drop the connection, the supervisor reopens (and re-inits) it.
            self._drop()
            why = f"{self.url}: no answer to {command} within {wait}s"
            raise NotSent(why) if unsent else PortDown(why)
        response = reply.result()  # PortDown when the connection ended meanwhile
        if not response.ok:
            raise CommandFailed(response)
        return response

    def _drop(self) -> None:
        """Close the connection now; the supervisor sees it and reopens."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        self._ready = False
        self._wake.set()

    async def ussd(self, text: str, *, wait: float) -> str | None:
        """``AT+CUSD=1,"text",15`` (TS 27.007 §7.15) and the network's answer, if any came
        within ``wait`` seconds."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[str] = loop.create_future()
        self._ussd = answer
        try:
            r = await self.command(f'AT+CUSD=1,"{text}",15', wait=wait)
            inline = r.value("+CUSD")
            if inline is not None:
                return _ussd_text(inline)
            alarm = self._clock.alarm(wait)
            try:
                racing: set[asyncio.Future[Any]] = {answer, alarm.future}
                await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
            finally:
                alarm.cancel()
            return answer.result() if answer.done() else None
        finally:
            self._ussd = None

    # ---- the connection ------------------------------------------------------------
    async def _open(self) -> None:
        try:
            reader, writer = await serialx.open_serial_connection(
                self.url, baudrate=self._cfg.baud, exclusive=True
            )
        except OSError as exc:
            if exc.errno in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK):
                raise PortDown(f"serial port {self.url} is in use by another program") from exc
            raise PortDown(f"cannot open {self.url}: {exc}") from exc
        self._engine.reset()
        self._writer = writer
        self._reader_task = asyncio.create_task(self._read(reader), name=f"modem-{self.url}-rx")

    async def _close(self) -> None:
        self._ready = False
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
            self._reader_task = None
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
        self._engine.reset()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        why = "EOF"
        try:
            while data := await reader.read(4096):
                for event in self._engine.receive_data(data):
                    self._event(event)
                self._flush()
        except OSError as exc:  # unplugged: EIO
            why = str(exc)
        self._writer = None
        self._ready = False
        if self._reply is not None and not self._reply.done():
            self._reply.set_exception(PortDown(f"{self.url}: {why}"))
        self._wake.set()

    def _flush(self) -> None:
        out = self._engine.data_to_send()
        if out and self._writer is not None:
            try:
                self._writer.write(out)
            except Exception as exc:  # the transport broke under us (serialx asserts)
                log.warning("modem %s: write failed: %s", self.url, exc)
                self._drop()
                if self._reply is not None and not self._reply.done():
                    self._reply.set_exception(PortDown(f"{self.url}: write failed"))

    def _event(self, event: Response | Timeout | Urc | Noise) -> None:
        if isinstance(event, Response):
            if self._reply is not None and not self._reply.done():
                self._reply.set_result(event)
        elif isinstance(event, Urc):
            if event.name == "+CUSD" and self._ussd is not None and not self._ussd.done():
                self._ussd.set_result(_ussd_text(event.args))
            else:
                self._urcs.put_nowait(event)
        elif isinstance(event, Noise):
            log.debug("modem %s: %s", self.url, event.line)

    # ---- supervision ---------------------------------------------------------------
    async def _supervise(self) -> None:
        backoff = self._cfg.reopen_min
        while True:
            try:
                await self._open()
                await self._init()
                backoff = self._cfg.reopen_min
                while True:
                    await self._poll()
                    await self._sleep(self._cfg.poll_interval)
                    if self._writer is None:
                        raise PortDown(f"{self.url}: connection lost")
                    if self._reset_wanted:
                        await self._reset()
            except PortDown as exc:
                log.warning("modem %s down: %s", self.url, exc)
                self.last_error = str(exc)
            except CommandFailed as exc:
                log.warning("modem %s: start-up failed: %s", self.url, exc)
                self.last_error = str(exc)
            except (OSError, RuntimeError, AssertionError) as exc:  # serialx/transport trouble
                log.warning("modem %s: %r", self.url, exc)
                self.last_error = repr(exc)
            except PinRefused as exc:
                log.warning("modem %s: SIM %s; waiting for a reset", self.url, exc)
                self.last_error = f"SIM: {exc}"
                await self._close()
                while not self._reset_wanted:  # this port only; the others go on
                    await self._sleep(3600)
                self._reset_wanted = False
                continue
            await self._close()
            await self._set_state(self.state.with_(reg="POWER_OFF", signal=0))
            await self._clock.sleep(backoff)
            backoff = min(backoff * 2, self._cfg.reopen_max)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        alarm = self._clock.alarm(seconds)
        waker: asyncio.Future[Any] = asyncio.ensure_future(self._wake.wait())
        try:
            racing: set[asyncio.Future[Any]] = {alarm.future, waker}
            await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        finally:
            alarm.cancel()
            waker.cancel()

    async def _reset(self) -> None:
        """``+CFUN=1,1`` (TS 27.007 §8.2: full functionality, reset first), then let the
        module settle and start again from the top (reopen, init)."""
        self._reset_wanted = False
        self._ready = False
        with contextlib.suppress(PortDown, CommandFailed):
            await self.command("AT+CFUN=1,1")
        await self._close()
        await self._clock.sleep(self._cfg.reset_settle)
        raise PortDown(f"{self.url}: reset")

    async def _init(self) -> None:
        # A modem left mid-PDU by a crash waits for Ctrl-Z: ESC cancels it (TS 27.005 §3.5.1).
        if self._writer is not None:
            self._writer.write(b"\x1b\r")
        with contextlib.suppress(CommandFailed):
            await self.command("AT")
        for cmd in ("ATE0", "AT+CMEE=1", "AT+CMGF=0"):
            await self.command(cmd)
        await self._pin()
        self._acks = await self._phase2_plus()
        if self._acks:
            try:
                await self.command(CNMI_INLINE)
            except CommandFailed:
                self._acks = False
        if not self._acks:
            await self.command(CNMI_STORED)
        ident = await self._identity()
        await self._set_state(self.state.with_(**ident))
        self._ready = True
        self._urcs.put_nowait(Urc("SWEEP", ""))  # read what waited in storage meanwhile

    async def _phase2_plus(self) -> bool:
        """``+CSMS=1`` taken, with mobile-terminated service (``+CSMS: <mt>,...``, mt 1)."""
        try:
            r = await self.command(CSMS_PHASE2)
        except CommandFailed:
            return False
        mt = (r.value("+CSMS") or "").split(",")[0].strip()
        return mt == "1"

    async def _pin(self) -> None:
        try:
            r = await self.command("AT+CPIN?")
            waiting = cpin_state(r.value("+CPIN"))
        except CommandFailed as exc:
            waiting = cpin_state(None, cme=exc.response.code)
        if waiting == "PIN_REQUIRE" and self._cfg.pin:
            try:
                await self.command(f'AT+CPIN="{self._cfg.pin}"')
                waiting = None
            except CommandFailed:
                waiting = "PIN_REQUIRE"  # wrong PIN: never retried (3 tries lock the SIM)
        if waiting is not None:
            await self._set_state(self.state.with_(reg=waiting, signal=0))
            raise PinRefused(waiting)

    async def _identity(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for field, cmd, pick in (
            ("imei", "AT+CGSN", _digits),
            ("imsi", "AT+CIMI", _digits),
            ("iccid", "AT+CRSM=176,12258,0,0,10", lambda r: iccid_of(r.value("+CRSM"))),
            ("number", "AT+CNUM", _cnum),
        ):
            with contextlib.suppress(CommandFailed):
                out[field] = pick(await self.command(cmd))
        return out

    async def _poll(self) -> None:
        try:
            r = await self.command("AT+CPIN?")
            waiting = cpin_state(r.value("+CPIN"))
        except CommandFailed as exc:
            waiting = cpin_state(None, cme=exc.response.code)
        if waiting is not None:
            await self._set_state(self.state.with_(reg=waiting, signal=0))
            return
        reg = creg_state((await self.command("AT+CREG?")).value("+CREG"))
        signal = csq_signal((await self.command("AT+CSQ")).value("+CSQ"))
        operator = self.state.operator
        with contextlib.suppress(CommandFailed):
            operator = cops_operator((await self.command("AT+COPS?")).value("+COPS"))
        await self._set_state(self.state.with_(reg=reg, signal=signal, operator=operator))

    async def _set_state(self, after: ModemState) -> None:
        before, self.state = self.state, after
        if before != after:
            await self._events.state_changed(self.index, before, after)

    # ---- unsolicited codes ---------------------------------------------------------
    async def _handle_urcs(self) -> None:
        while True:
            urc = await self._urcs.get()
            try:
                await self._urc(urc)
            except (PortDown, CommandFailed) as exc:
                log.warning("modem %s: %s while handling %s", self.url, exc, urc.name)
            except Exception:
                log.exception("modem %s: handling %s", self.url, urc.name)

    async def _urc(self, urc: Urc) -> None:
        if urc.name in ("+CMT", "+CDS") and urc.pdu is not None:
            pdu = _hex(urc.pdu)
            if pdu is not None:  # raises when not committed: not acknowledged, sent again
                await self._events.pdu_arrived(self.index, report=urc.name == "+CDS", pdu=pdu)
            if self._acks:
                try:
                    await self.command(CNMA_ACK)
                except CommandFailed as exc:  # too late (+CMS ERROR 340): it comes again
                    log.info("modem %s: %s not acknowledged: %s", self.url, urc.name, exc)
        elif urc.name in ("+CMTI", "+CDSI"):
            index = urc.args.rsplit(",", 1)[-1].strip()
            if index.isdigit():
                await self._read_stored(int(index), report=urc.name == "+CDSI")
        elif urc.name == "SWEEP":
            await self._sweep()
        elif urc.name in ("+CREG", "+CEREG", "+CGREG"):
            self._wake.set()  # poll now

    async def _sweep(self) -> None:
        """``AT+CMGL=4`` (all, PDU mode, TS 27.005 §3.4.2): messages and reports stored while
        nobody listened (their +CMTI/+CDSI lost with a restart), each read then deleted."""
        r = await self.command("AT+CMGL=4")
        for head, body in itertools.pairwise(r.lines):
            if not head.startswith("+CMGL:"):
                continue
            index = head[6:].split(",")[0].strip()
            pdu = _hex(body)
            if pdu is None or not index.isdigit():
                continue
            smsc_len = pdu[0] + 1
            report = len(pdu) > smsc_len and pdu[smsc_len] & 0x03 == 0x02  # TP-MTI
            await self._events.pdu_arrived(self.index, report=report, pdu=pdu)
            await self.command(f"AT+CMGD={index}")

    async def _read_stored(self, index: int, *, report: bool) -> None:
        """+CMGR then +CMGD (TS 27.005 §3.5.1, §3.5.4): deleted only once committed."""
        r = await self.command(f"AT+CMGR={index}")
        pdu = _hex(r.lines[-1]) if r.lines else None
        if pdu is not None:
            await self._events.pdu_arrived(self.index, report=report, pdu=pdu)
        await self.command(f"AT+CMGD={index}")


def _digits(r: Response) -> str:
    for line in r.lines:
        if line.strip().isdigit():
            return line.strip()
    return ""


def _cnum(r: Response) -> str:
    v = r.value("+CNUM")
    parts = v.split('"') if v else []
    return parts[3] if len(parts) > 3 else ""


def _hex(text: str) -> bytes | None:
    try:
        return bytes.fromhex(text.strip())
    except ValueError:
        return None


def _ussd_text(args: str) -> str:
    """``<m>,"<str>",<dcs>`` (TS 27.007 §7.15): DCS 72 (UCS-2, TS 23.038 §5) as hex."""
    parts = args.split('"')
    if len(parts) < 3:
        return ""
    text, dcs = parts[1], parts[2].strip(", ")
    if dcs.isdigit() and (int(dcs) & 0x0C) == 0x08 and len(text) % 4 == 0:
        with contextlib.suppress(ValueError):
            return bytes.fromhex(text).decode("utf-16-be")
    return text
