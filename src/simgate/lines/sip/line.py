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
from simgate.codecs.sip.message import SipMessage, SipRequest
from simgate.domain.calls import SIP_SERVICE_UNAVAILABLE, Audio, sip_reason
from simgate.lines.sip.call import CallContext, SipCall
from simgate.lines.sip.media import Pacer, PortPool, PortsExhausted, RtpStats, RtpStream
from simgate.lines.sip.transport import SipTransport
from simgate.lines.voice import CallEvent, CallEventKind, CallRequest
from simgate.settings import SipVoiceLineSettings

log = logging.getLogger(__name__)

SIP_ADDRESS_INCOMPLETE = 484
STOP_WAIT_S = 10.0  # stop() waits this long for the hung-up calls to end


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
    def __init__(self, name: str, cfg: SipVoiceLineSettings, clock: Clock) -> None:
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
        log.info(
            "SIP line %s: %s to %s from %s:%d",
            self.name,
            self._cfg.transport,
            self._cfg.proxy,
            *transport.local_address,
        )

    async def stop(self) -> None:
        calls = list(self._calls.values())
        for call in calls:
            await call.hangup()
        if calls:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(c.done.wait() for c in calls)), timeout=STOP_WAIT_S
                )
        for call in list(self._calls.values()):  # the far end never answered our hang-up
            call._finish(SIP_SERVICE_UNAVAILABLE, by_remote=False, reason="line stopped")
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

    def _on_message(self, msg: SipMessage) -> None:
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
