"""One outgoing call on the SIP line: INVITE to BYE, as lines/voice.py's events.

The call, as the issue's flow (RFC 3261 §13, §15, §17.1; timers on the event loop's monotonic
clock, event times from the injected clock)::

    INVITE ─▶ 100 (stop resending) ─▶ 180/183: RINGING ─▶ 200: ACK, ANSWERED ─▶ RTP ...
      │  401/407: ACK, INVITE again with digest (once; a second refusal ends the call)
      │  300-699: ACK, ENDED with that code            far BYE: 200 OK, ENDED 200 (by_remote)
      │  no final answer in invite_timeout: ENDED 408  our hang-up: BYE, ENDED 200 at its answer
      └─ our hang-up before the answer: CANCEL (after a provisional, §9.1), ENDED 487

Keys come from RFC 4733 events on the RTP stream and from SIP INFO bodies, per ``dtmf``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from simgate.clock import Clock
from simgate.codecs.sip import dtmf_info, sdp
from simgate.codecs.sip.dialog import OutgoingDialog, reply
from simgate.codecs.sip.digest import DigestError
from simgate.codecs.sip.message import SipError, SipMessage, SipRequest, SipResponse
from simgate.domain.calls import (
    SIP_CANCELLED,
    SIP_OK,
    SIP_REASONS,
    SIP_SERVICE_UNAVAILABLE,
    SIP_TIMEOUT,
    Audio,
    sip_reason,
)
from simgate.lines.sip.media import Pacer, Player, RtpStream, packetize
from simgate.lines.voice import CallEvent, CallEventKind, CallRequest
from simgate.settings import SipVoiceLineSettings

log = logging.getLogger(__name__)

T1 = 0.5  # RFC 3261 §17.1.1.1: the first retransmission interval (UDP)
T2 = 4.0  # the cap of non-INVITE retransmission intervals (§17.1.2.2)
# Our BYE or CANCEL not answered in this long: the call is over anyway (the flow gives the
# line 10 s, domain/call_flow.py HANGUP_GRACE_MS).
HANGUP_WAIT_S = 8.0
SIP_NOT_ACCEPTABLE = 488  # the far end's SDP has no codec of ours (RFC 3261 §21.4.26)


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
        self._queue: asyncio.Queue[CallEvent] = asyncio.Queue()
        self._drained = False
        self._offer = sdp.offer(
            address=ctx.local_host, port=rtp_port, codecs=ctx.cfg.codecs, session_id=request.call_id
        )
        self._media: sdp.MediaAnswer | None = None
        self._provisional = False
        self._rang = False
        self._authed = False
        self._final = asyncio.Event()  # the INVITE has its final answer
        self._cancel_wanted = False
        self._cancel_sent = False
        self._hangup_answered = asyncio.Event()  # our BYE / CANCEL was answered
        self._player: Player | None = None
        self._tasks: set[asyncio.Task[None]] = set()
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
        if not self.answered or self._media is None:
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
        """Send BYE (answered) or CANCEL (not yet); ENDED follows when the far end answers."""
        if self.ended is not None or self._cancel_wanted:
            return
        self._cancel_wanted = True
        if self.answered:
            self._spawn(self._bye(), "bye")
        elif self._provisional:
            self._send_cancel()
        # else: CANCEL waits for a provisional answer (RFC 3261 §9.1); Timer B ends it.

    # ---- driving the call -------------------------------------------------------------
    def start(self) -> None:
        self._spawn(self._invite(), "invite")

    async def _invite(self) -> None:
        """Send the INVITE (again with digest after a challenge) until its final answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._ctx.cfg.invite_timeout_seconds
        request = self.dialog.invite(self._offer)
        self._ctx.send(request)
        interval = T1
        sent_cseq = self.dialog.invite_cseq
        while not self._final.is_set():
            left = deadline - loop.time()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._final.wait(), timeout=min(interval, left))
            if self._final.is_set() and self.dialog.invite_cseq != sent_cseq:
                # A challenge was answered with a new INVITE: a new transaction, new timers.
                self._final.clear()
                sent_cseq = self.dialog.invite_cseq
                interval = T1
                continue
            if not self._final.is_set() and not self._provisional and not self._ctx.reliable:
                self._ctx.send(self.dialog.last_invite or request)  # Timer A (§17.1.1.2)
                interval = min(interval * 2, T2)
        if not self._final.is_set():  # Timer B: nobody answered the INVITE
            if self._provisional and not self._cancel_sent:
                self._send_cancel()
            code = SIP_CANCELLED if self._cancel_wanted else SIP_TIMEOUT
            self._finish(code, by_remote=not self._cancel_wanted)

    async def _bye(self) -> None:
        bye = self.dialog.bye()
        await self._send_until_answered(bye)
        self._finish(SIP_OK, by_remote=False)

    def _send_cancel(self) -> None:
        self._cancel_sent = True
        self._spawn(self._cancel(), "cancel")

    async def _cancel(self) -> None:
        await self._send_until_answered(self.dialog.cancel())
        # The INVITE's 487 normally follows (§9.1); if it does not, end the call ourselves.
        try:
            await asyncio.wait_for(self._final.wait(), timeout=HANGUP_WAIT_S)
        except TimeoutError:
            self._finish(SIP_CANCELLED, by_remote=False)

    async def _send_until_answered(self, request: SipRequest) -> None:
        """A non-INVITE request (§17.1.2): resend on UDP until answered, at most
        HANGUP_WAIT_S."""
        self._hangup_answered.clear()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HANGUP_WAIT_S
        interval = T1
        self._ctx.send(request)
        while not self._hangup_answered.is_set() and (left := deadline - loop.time()) > 0:
            try:
                await asyncio.wait_for(self._hangup_answered.wait(), timeout=min(interval, left))
            except TimeoutError:
                if not self._ctx.reliable:
                    self._ctx.send(request)
                    interval = min(interval * 2, T2)

    # ---- messages from the far end ------------------------------------------------------
    def on_message(self, msg: SipMessage) -> None:
        try:
            if isinstance(msg, SipResponse):
                self._on_response(msg)
            elif isinstance(msg, SipRequest):
                self._on_request(msg)
        except SipError as exc:
            log.warning("call %s: bad SIP message: %s", self.request.call_id, exc)

    def _on_response(self, resp: SipResponse) -> None:
        number, method = resp.cseq
        if method != "INVITE":
            if resp.status >= 200:
                self._hangup_answered.set()  # our BYE or CANCEL was answered
            return
        if number != self.dialog.invite_cseq:
            if 200 <= resp.status < 300 and self.answered:
                self._ctx.send(self.dialog.ack(resp))  # a retransmitted 2xx (§13.2.2.4)
            return
        status = resp.status
        if status < 200:
            self._provisional = True
            if status in (180, 183) and not self._rang:
                self._rang = True  # early media (183 with SDP) is not played (issue 17)
                self._emit(CallEventKind.RINGING)
            if self._cancel_wanted and not self._cancel_sent and self.ended is None:
                self._send_cancel()
            return
        if status < 300:
            self._answered(resp)
            return
        if self.ended is not None or self._final.is_set():
            self._ctx.send(self.dialog.ack(resp))  # a retransmitted failure: ACK again
            return
        self._ctx.send(self.dialog.ack(resp))
        if status in (401, 407) and not self._cancel_wanted and self._challenge(resp):
            self._final.set()  # the INVITE task restarts its timers for the new INVITE
            return
        self._final.set()
        # A 487 to our CANCEL ends a call we hung up; any other failure is the far end's.
        self._finish(status, by_remote=not self._cancel_wanted, reason=resp.reason)

    def _challenge(self, resp: SipResponse) -> bool:
        """Answer a 401/407 with a new INVITE; False when we cannot (then the call ends)."""
        cfg = self._ctx.cfg
        who = f"line trunk {cfg.proxy}"
        if self._authed:
            log.error(
                "%s refused our credentials for user %r (SIP %d)", who, cfg.username, resp.status
            )
            return False
        if not cfg.username:
            log.error(
                "%s asks for authentication (SIP %d); set username/password", who, resp.status
            )
            return False
        try:
            auth = self.dialog.authorize(resp, username=cfg.username, password=cfg.password)
        except DigestError as exc:
            log.error("%s: cannot answer its challenge: %s", who, exc)
            return False
        self._authed = True
        self._ctx.send(self.dialog.invite(self._offer, auth=auth))
        return True

    def _answered(self, resp: SipResponse) -> None:
        if self.answered or self.ended is not None:
            self._ctx.send(self.dialog.ack(resp))
            return
        self._final.set()
        self.dialog.established(resp)
        self._ctx.send(self.dialog.ack(resp))
        try:
            media = sdp.parse_answer(resp.body, offered=self._ctx.cfg.codecs)
        except sdp.SdpError as exc:
            log.warning("call %s: unusable SDP answer: %s", self.request.call_id, exc)
            self._cancel_wanted = True
            self._spawn(self._bye_then(SIP_NOT_ACCEPTABLE), "bye")
            return
        self._media = media
        self.rtp.remote = (media.address, media.port)
        if self._ctx.cfg.dtmf in ("rfc4733", "both"):
            self.rtp.event_pt = (
                media.event_pt if media.event_pt is not None else sdp.TELEPHONE_EVENT_PT
            )
        self.answered = True
        self._emit(CallEventKind.ANSWERED)
        if self._cancel_wanted:  # we hung up while it was being answered: BYE at once
            self._spawn(self._bye(), "bye")

    async def _bye_then(self, code: int) -> None:
        await self._send_until_answered(self.dialog.bye())
        self._finish(code, by_remote=False, reason="no common codec")

    def _on_request(self, req: SipRequest) -> None:
        method = req.method
        if method == "ACK":
            return
        tag = self.dialog.local_tag
        if method == "BYE":
            self._ctx.send(reply(req, 200, "OK", local_tag=tag))
            if self.ended is None:
                self._finish(SIP_OK, by_remote=True)
            return
        if method == "INFO":
            self._ctx.send(reply(req, 200, "OK", local_tag=tag))
            if self._ctx.cfg.dtmf in ("info", "both") and self.answered:
                key = dtmf_info.key_of(req.get("content-type"), req.body)
                if key:
                    self.on_key(key)
            return
        if method == "OPTIONS":
            self._ctx.send(reply(req, 200, "OK", local_tag=tag))
            return
        if method == "INVITE":  # a re-INVITE: keep the session as it is (RFC 3261 §14.2)
            ok = reply(req, 200, "OK", local_tag=tag)
            ok.headers += [
                ("Contact", f"<{self.dialog.contact}>"),
                ("Content-Type", "application/sdp"),
            ]
            ok.body = self._offer
            self._ctx.send(ok)
            return
        self._ctx.send(reply(req, 405, "Method Not Allowed", local_tag=tag))

    def on_key(self, key: str) -> None:
        if self.answered and self.ended is None:
            self._emit(CallEventKind.DTMF, digit=key)

    # ---- ending ---------------------------------------------------------------------------
    def _emit(self, kind: CallEventKind, *, digit: str = "") -> None:
        if self.ended is None:
            self._queue.put_nowait(CallEvent(kind, self._ctx.clock.now_ms(), digit=digit))

    def _finish(self, code: int, *, by_remote: bool, reason: str = "") -> None:
        if self.ended is not None:
            return
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
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        self._on_end(self)
        self.done.set()

    def abandon(self, reason: str) -> None:
        """End the call without the far end (the line is stopping and it never answered our
        hang-up): 503 unless it was answered (then the flow records 200 anyway)."""
        self._finish(SIP_SERVICE_UNAVAILABLE, by_remote=False, reason=reason)

    def _spawn(self, coro: object, what: str) -> None:
        assert asyncio.iscoroutine(coro)
        task = asyncio.create_task(coro, name=f"sip-call-{self.request.call_id}-{what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
