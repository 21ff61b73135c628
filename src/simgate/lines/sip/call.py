"""One outgoing call on the SIP line: the driver of :class:`simgate.codecs.sip.uac.UacCall`.

The state machine decides (what to send, which timer to start, what happened); this class
carries it out on asyncio: sends through the line's transport, runs timers on the event loop's
monotonic clock and feeds them back, turns the machine's call events into lines/voice.py's
(times from the injected clock), and plays the audio as paced RTP once answered. Keys come
from RFC 4733 events on the RTP stream (:mod:`.media`) and from SIP INFO (the machine).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from simgate.clock import Clock
from simgate.codecs.sip import sdp, uac
from simgate.codecs.sip.dialog import OutgoingDialog
from simgate.codecs.sip.message import SipError, SipMessage
from simgate.domain.calls import SIP_REASONS, SIP_SERVICE_UNAVAILABLE, Audio, sip_reason
from simgate.lines.sip.media import Pacer, Player, RtpStream, packetize
from simgate.lines.voice import CallEvent, CallEventKind, CallRequest
from simgate.settings import SipVoiceLineSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a call needs from its line."""

    cfg: SipVoiceLineSettings
    clock: Clock
    send: Callable[[SipMessage], None]
    reliable: bool  # TCP: no retransmissions
    pacer: Pacer
    local_host: str


class SipCall:
    """A :class:`simgate.lines.voice.Call` over SIP. :meth:`start` sends the INVITE."""

    def __init__(
        self,
        request: CallRequest,
        *,
        ctx: CallContext,
        dialog: OutgoingDialog,
        rtp: RtpStream,
        rtp_port: int,
        on_end: Callable[[SipCall], None],
    ) -> None:
        self.request = request
        self.dialog = dialog
        self.rtp = rtp
        self.rtp_port = rtp_port
        self._ctx = ctx
        self._on_end = on_end
        cfg = ctx.cfg
        self.machine = uac.UacCall(
            dialog=dialog,
            offer=sdp.offer(
                address=ctx.local_host, port=rtp_port, codecs=cfg.codecs, session_id=request.call_id
            ),
            cfg=uac.UacSettings(
                codecs=cfg.codecs,
                dtmf=cfg.dtmf,
                username=cfg.username,
                password=cfg.password,
                reliable=ctx.reliable,
                invite_timeout_s=cfg.invite_timeout_seconds,
            ),
        )
        self._queue: asyncio.Queue[CallEvent] = asyncio.Queue()
        self._drained = False
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._media: sdp.MediaAnswer | None = None
        self._player: Player | None = None
        self.answered = False
        self.ended: CallEvent | None = None
        self.done = asyncio.Event()

    # ---- the Call protocol ------------------------------------------------------------
    async def events(self) -> AsyncIterator[CallEvent]:
        if self._drained:
            return
        while True:
            event = await self._queue.get()
            if event.kind is CallEventKind.ENDED:
                self._drained = True
                yield event
                return
            yield event

    async def play(self, audio: Audio, loops: int) -> None:
        if loops < 1:
            raise ValueError(f"loops must be at least 1, got {loops}")
        if self.ended is not None:
            return
        if self._media is None:
            raise RuntimeError(f"call {self.request.call_id}: play before ANSWERED")
        if self._player is not None:
            raise RuntimeError(f"call {self.request.call_id}: play called twice")
        payloads = packetize(audio.pcm, self._media.codec)
        if not payloads:
            self._emit(CallEventKind.PLAYED)
            return
        self._player = Player(
            stream=self.rtp,
            payloads=payloads,
            payload_type=self._media.payload_type,
            loops=loops,
            on_done=lambda: self._emit(CallEventKind.PLAYED),
        )
        self._ctx.pacer.add(self._player)

    async def hangup(self) -> None:
        """BYE after the answer, CANCEL before it; ENDED follows when the far end answers."""
        self._feed(uac.Hangup())

    # ---- driving the machine -------------------------------------------------------------
    def start(self) -> None:
        self._feed(uac.Dial())

    def on_message(self, msg: SipMessage) -> None:
        try:
            self._feed(uac.Received(msg))
        except SipError as exc:
            log.warning("call %s: bad SIP message: %s", self.request.call_id, exc)

    def on_key(self, key: str) -> None:
        """A key read from the RTP stream (RFC 4733)."""
        if self.answered and self.ended is None:
            self._emit(CallEventKind.DTMF, digit=key)

    def _feed(self, event: uac.Event) -> None:
        if self.ended is not None:
            if isinstance(event, uac.Received):  # late retransmissions still get their ACK
                for action in self.machine.handle(event):
                    if isinstance(action, uac.Send):
                        self._ctx.send(action.msg)
            return
        for action in self.machine.handle(event):
            self._act(action)

    def _act(self, action: uac.Action) -> None:
        if isinstance(action, uac.Send):
            self._ctx.send(action.msg)
        elif isinstance(action, uac.StartTimer):
            old = self._timers.pop(action.name, None)
            if old is not None:
                old.cancel()
            loop = asyncio.get_running_loop()
            self._timers[action.name] = loop.call_later(
                action.seconds, self._feed, uac.TimerFired(action.name)
            )
        elif isinstance(action, uac.StopTimer):
            handle = self._timers.pop(action.name, None)
            if handle is not None:
                handle.cancel()
        elif isinstance(action, uac.Ringing):
            self._emit(CallEventKind.RINGING)
        elif isinstance(action, uac.Answered):
            self._answered(action.media)
        elif isinstance(action, uac.Key):
            self.on_key(action.digit)
        elif isinstance(action, uac.Log):
            log.error(
                "SIP line trunk %s, call %s: %s",
                self._ctx.cfg.proxy,
                self.request.call_id,
                action.text,
            )
        elif isinstance(action, uac.Ended):
            self._finish(action.code, by_remote=action.by_remote, reason=action.reason)

    def _answered(self, media: sdp.MediaAnswer) -> None:
        self._media = media
        self.rtp.remote = (media.address, media.port)
        if self._ctx.cfg.dtmf in ("rfc4733", "both"):
            self.rtp.event_pt = (
                media.event_pt if media.event_pt is not None else sdp.TELEPHONE_EVENT_PT
            )
        self.answered = True
        self._emit(CallEventKind.ANSWERED)

    # ---- ending ---------------------------------------------------------------------------
    def abandon(self, reason: str) -> None:
        """End the call without the far end (the line is stopping and it never answered our
        hang-up): 503 unless it was answered (then the flow records 200 anyway)."""
        self._finish(SIP_SERVICE_UNAVAILABLE, by_remote=False, reason=reason)

    def _emit(self, kind: CallEventKind, *, digit: str = "") -> None:
        if self.ended is None:
            self._queue.put_nowait(CallEvent(kind, self._ctx.clock.now_ms(), digit=digit))

    def _finish(self, code: int, *, by_remote: bool, reason: str = "") -> None:
        if self.ended is not None:
            return
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self._player is not None:
            self._ctx.pacer.remove(self._player)
        self.rtp.close()  # reports a key whose end packets were lost, then closes
        event = CallEvent(
            CallEventKind.ENDED,
            self._ctx.clock.now_ms(),
            sip_code=code,
            # Our words for the codes we know (as the sim line's), the far end's for the rest.
            reason=sip_reason(code) if code in SIP_REASONS else (reason or sip_reason(code)),
            by_remote=by_remote,
        )
        self.ended = event
        self._queue.put_nowait(event)
        self._on_end(self)
        self.done.set()
