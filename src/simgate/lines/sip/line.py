"""The SIP voice line: a :class:`simgate.lines.voice.VoiceLine` placing calls through a trunk.

One SIP socket (UDP, or one TCP connection) per line, messages handed to their call by
Call-ID; one RTP socket per call from the line's port range; one RTP pacer per line. A dial
the line cannot place ends at once with a SIP code, as the sim line's do: 503 when the line
is stopped, full (max_concurrent) or out of RTP ports (logged as an error), 484 for a callee
that is not 7-15 digits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from simgate.clock import Clock
from simgate.codecs.sip.dialog import OutgoingDialog, reply
from simgate.codecs.sip.digest import DigestError
from simgate.codecs.sip.message import SipMessage, SipRequest, SipResponse
from simgate.codecs.sip.register import Registration
from simgate.domain.calls import SIP_SERVICE_UNAVAILABLE, Audio, sip_reason
from simgate.lines.sip.call import CallContext, SipCall
from simgate.lines.sip.media import Pacer, PortPool, PortsExhausted, RtpStats, RtpStream
from simgate.lines.sip.transport import SipTransport
from simgate.lines.voice import CallEvent, CallEventKind, CallRequest
from simgate.metrics import Metrics
from simgate.settings import SipVoiceLineSettings

log = logging.getLogger(__name__)

SIP_ADDRESS_INCOMPLETE = 484
STOP_WAIT_S = 10.0  # stop() waits this long for the hung-up calls to end
REGISTER_WAIT_S = 8.0  # a REGISTER not answered in this long has failed


@dataclass
class LineStats:
    """Per-line counters (issue 17 "Operations"): calls up now, attempts by final SIP code,
    RTP packets sent / received / lost."""

    calls_up: int = 0
    attempts: Counter[int] = field(default_factory=Counter)
    rtp: RtpStats = field(default_factory=RtpStats)
    peak_live: int = 0  # the most calls in progress at once (never above max_concurrent)
    dial_ms: deque[int] = field(default_factory=lambda: deque(maxlen=1000))  # recent INVITEs


class RefusedCall:
    """A dial the line did not place: ENDED at once with ``code``."""

    def __init__(self, code: int, at_ms: int, reason: str = "") -> None:
        self._event = CallEvent(
            CallEventKind.ENDED, at_ms, sip_code=code, reason=reason or sip_reason(code)
        )
        self._given = False

    async def events(self) -> AsyncIterator[CallEvent]:
        if not self._given:
            self._given = True
            yield self._event

    async def play(self, audio: Audio, loops: int) -> None:
        return None

    async def hangup(self) -> None:
        return None


class SipVoiceLine:
    def __init__(
        self, name: str, cfg: SipVoiceLineSettings, clock: Clock, *, metrics: Metrics | None = None
    ) -> None:
        self.name = name
        self.calls_per_second = cfg.calls_per_second
        self.max_concurrent = cfg.max_concurrent
        self.stats = LineStats()
        self._cfg = cfg
        self._clock = clock
        self._ports = PortPool(*cfg.rtp_range)
        self._calls: dict[str, SipCall] = {}
        self._transport: SipTransport | None = None
        self._pacer: Pacer | None = None
        self._domain = cfg.domain or cfg.proxy_address[0]
        self._registration: Registration | None = None
        self._reg_answer: asyncio.Future[SipResponse] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self.registered = False
        if metrics is not None:
            self._export(metrics)

    def _export(self, metrics: Metrics) -> None:
        """Per-line metrics (issue 17 "Operations"), read from ``stats`` at scrape time."""
        stats = self.stats
        metrics.sip_calls_up.labels(self.name).set_function(lambda: stats.calls_up)
        for kind in ("sent", "received", "lost"):
            gauge = metrics.sip_rtp_packets.labels(self.name, kind)
            gauge.set_function(lambda k=kind: getattr(stats.rtp, k))  # type: ignore[misc]

    @property
    def live_calls(self) -> int:
        return len(self._calls)

    async def start(self) -> None:
        if self._transport is not None:
            return
        transport = SipTransport(
            kind=self._cfg.transport,
            proxy=self._cfg.proxy_address,
            local_host=self._cfg.local_host,
            local_port=self._cfg.sip_port,
            on_message=self._on_message,
        )
        await transport.open()
        self._transport = transport
        self._pacer = Pacer()
        if self._cfg.register_with_trunk:
            host, port = transport.local_address
            self._registration = Registration(
                aor=f"sip:{self._cfg.username or self._cfg.from_user}@{self._domain}",
                registrar=f"sip:{self._domain}",
                contact=f"sip:{self._cfg.from_user}@{host}:{port};transport={transport.kind}",
                via_host=f"{host}:{port}",
                transport=transport.kind.upper(),
                expires=self._cfg.register_expires,
            )
            granted = await self._register()
            self._refresher = asyncio.create_task(self._refresh(granted), name="sip-register")
        log.info(
            "SIP line %s: %s to %s from %s:%d",
            self.name,
            self._cfg.transport,
            self._cfg.proxy,
            *transport.local_address,
        )

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
            self._refresher = None
        if self.registered and self._registration is not None and self._transport is not None:
            # Remove our binding (Expires 0, RFC 3261 §10.2.2); no wait for the answer.
            self._transport.send(self._registration.request(expires=0))
            self.registered = False
        calls = list(self._calls.values())
        for call in calls:
            await call.hangup()
        if calls:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(c.done.wait() for c in calls)), timeout=STOP_WAIT_S
                )
        for call in list(self._calls.values()):  # the far end never answered our hang-up
            call.abandon("line stopped")
        if self._pacer is not None:
            await self._pacer.close()
            self._pacer = None
        if self._transport is not None:
            await self._transport.close()
            self._transport = None

    async def dial(self, request: CallRequest) -> SipCall | RefusedCall:
        now = self._clock.now_ms()
        transport, pacer = self._transport, self._pacer
        if transport is None or pacer is None or len(self._calls) >= self.max_concurrent:
            return self._refuse(SIP_SERVICE_UNAVAILABLE, now)
        if not _dialable(request.callee):
            return self._refuse(SIP_ADDRESS_INCOMPLETE, now)
        call_id = f"{secrets.token_hex(10)}@simgate"
        host, port = transport.local_address
        caller = request.caller or self._cfg.from_user
        dialog = OutgoingDialog(
            call_id=call_id,
            local_uri=f"sip:{caller}@{self._domain}",
            remote_uri=f"sip:{request.callee}@{self._domain}",
            contact=f"sip:{caller}@{host}:{port};transport={transport.kind}",
            via_host=f"{host}:{port}",
            transport=transport.kind.upper(),
        )
        try:
            rtp, rtp_port = await RtpStream.bind(
                self._ports, self._cfg.local_host, on_key=lambda _k: None, stats=self.stats.rtp
            )
        except PortsExhausted as exc:
            log.error("SIP line %s cannot place call %s: %s", self.name, request.call_id, exc)
            return self._refuse(SIP_SERVICE_UNAVAILABLE, now, reason="RTP ports exhausted")
        ctx = CallContext(
            cfg=self._cfg,
            clock=self._clock,
            send=transport.send,
            reliable=transport.reliable,
            pacer=pacer,
            local_host=host,
        )
        call = SipCall(
            request, ctx=ctx, dialog=dialog, rtp=rtp, rtp_port=rtp_port, on_end=self._ended
        )
        rtp.on_key = call.on_key  # keys read from RTP go to this call
        self._calls[call_id] = call
        self.stats.peak_live = max(self.stats.peak_live, len(self._calls))
        self.stats.dial_ms.append(now)
        call.start()
        return call

    def _refuse(self, code: int, at_ms: int, *, reason: str = "") -> RefusedCall:
        self.stats.attempts[code] += 1
        return RefusedCall(code, at_ms, reason)

    def _ended(self, call: SipCall) -> None:
        self._calls.pop(call.dialog.call_id, None)
        self._ports.give(call.rtp_port)
        ended = call.ended
        assert ended is not None
        self.stats.attempts[ended.sip_code] += 1
        if call.answered:
            self.stats.calls_up -= 1

    # ---- REGISTER (RFC 3261 §10) ------------------------------------------------------------
    async def _register(self) -> int:
        """Register (answering one digest challenge); the seconds granted, 0 on failure (the
        error is logged and the refresher tries again a minute later)."""
        reg, cfg = self._registration, self._cfg
        assert reg is not None
        auth: tuple[str, str] | None = None
        for _ in range(2):
            answer = await self._send_register(reg.request(auth=auth))
            if answer is None:
                log.error(
                    "SIP line %s: the registrar %s does not answer REGISTER", self.name, cfg.proxy
                )
                break
            if 200 <= answer.status < 300:
                self.registered = True
                return reg.granted_seconds(answer)
            if answer.status in (401, 407) and auth is None and cfg.username:
                try:
                    auth = reg.authorize(answer, username=cfg.username, password=cfg.password)
                except DigestError as exc:
                    log.error("SIP line %s: cannot answer the registrar: %s", self.name, exc)
                    break
                continue
            log.error(
                "SIP line %s: the trunk %s refused registration for %r (SIP %d %s)",
                self.name,
                cfg.proxy,
                cfg.username or cfg.from_user,
                answer.status,
                answer.reason,
            )
            break
        self.registered = False
        return 0

    async def _send_register(self, req: SipRequest) -> SipResponse | None:
        """Send a REGISTER, resending on UDP (Timer E, §17.1.2.2), until a final answer."""
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        self._reg_answer = answer = loop.create_future()
        deadline = loop.time() + REGISTER_WAIT_S
        interval = 0.5
        self._transport.send(req)
        while (left := deadline - loop.time()) > 0:
            try:
                return await asyncio.wait_for(asyncio.shield(answer), timeout=min(interval, left))
            except TimeoutError:
                if not self._transport.reliable:
                    self._transport.send(req)
                    interval = min(interval * 2, 4.0)
        return None

    async def _refresh(self, granted: int) -> None:
        while True:
            # Refresh well before the binding expires; after a failure, retry in a minute.
            await asyncio.sleep(max(granted * 0.8, 5.0) if granted else 60.0)
            granted = await self._register()

    def _on_message(self, msg: SipMessage) -> None:
        reg = self._registration
        if reg is not None and msg.call_id == reg.call_id:
            waiting = self._reg_answer
            if (
                isinstance(msg, SipResponse)
                and msg.status >= 200
                and waiting
                and not waiting.done()
            ):
                waiting.set_result(msg)
            return
        call = self._calls.get(msg.call_id)
        if call is not None:
            was_up = call.answered
            call.on_message(msg)
            if call.answered and not was_up:
                self.stats.calls_up += 1
            return
        if isinstance(msg, SipRequest) and msg.method != "ACK" and self._transport is not None:
            # Not a call of ours (ended, or never ours): RFC 3261 §12.2.2 / §8.2.2.
            code, text = (200, "OK") if msg.method == "OPTIONS" else (481, "Call Does Not Exist")
            self._transport.send(reply(msg, code, text))


def _dialable(callee: str) -> bool:
    return callee.isascii() and callee.isdigit() and 7 <= len(callee) <= 15
