"""What the SMSC delivers to us (deliver_sm / data_sm): receipts and incoming SMS.

Each is committed through the sink before the bind answers the PDU (the answer is the
return value of :meth:`Deliveries.handle`), so an SMSC only forgets what simgate stored.
Receipt ids are resolved with the line's :class:`~.receipts.ReceiptMatcher`; a receipt
for an id not seen yet waits up to ``receipt_hold`` seconds while submit_sm are in flight
(the receipt often overtakes its submit_sm_resp), then falls back to the matcher's guess,
which the store keeps as an orphan until the part is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Sequence

from simgate.clock import Clock
from simgate.codecs.smpp import (
    CommandStatus,
    DataSm,
    DeliverSm,
    DeliveryReceipt,
    MessageState,
    Pdu,
    extract_receipt,
)
from simgate.lines.base import InboundSink, IncomingSms, LineReport
from simgate.lines.smpp.inbound import Assembled, Reassembler, receipt_status
from simgate.lines.smpp.receipts import ReceiptMatcher
from simgate.lines.smpp.refs import SubmitRefs
from simgate.settings import SmppLineSettings

log = logging.getLogger(__name__)

__all__ = ["Deliveries"]


class Deliveries:
    def __init__(
        self,
        *,
        line: str,
        cfg: SmppLineSettings,
        clock: Clock,
        matcher: ReceiptMatcher,
        in_flight: Callable[[], bool],
        refs: SubmitRefs | None = None,
    ) -> None:
        self.line = line
        self.cfg = cfg
        self.clock = clock
        self.matcher = matcher
        self._in_flight = in_flight
        self.refs = refs if refs is not None else SubmitRefs(None)
        self.reassembler = Reassembler(cfg.reassembly_timeout)
        self.sink: InboundSink | None = None
        self._id_waiters: list[asyncio.Future[None]] = []
        self._sweeper: asyncio.Task[None] | None = None

    def start(self, sink: InboundSink) -> None:
        self.sink = sink
        self._sweeper = asyncio.create_task(self._sweep(), name=f"smpp-{self.line}-sweep")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self._deliver_incoming(self.reassembler.expired(math.inf))

    def id_seen(self) -> None:
        """A submit_sm_resp id was remembered: receipts waiting for one look again."""
        if self._id_waiters:
            waiters, self._id_waiters = self._id_waiters, []
            for w in waiters:
                if not w.done():
                    w.set_result(None)

    async def handle(self, pdu: Pdu) -> int:
        """A request from the SMSC; the status to answer it with, once committed."""
        if not isinstance(pdu, DeliverSm | DataSm):
            return CommandStatus.ESME_RINVCMDID
        receipt = extract_receipt(pdu) or _tlv_receipt(pdu)
        if receipt is not None:
            await self._on_receipt(receipt)
            return CommandStatus.ESME_ROK
        assembled = self.reassembler.add(pdu, self.clock.now_ms() / 1000)
        if assembled is not None:
            await self._deliver_incoming([assembled])
        return CommandStatus.ESME_ROK

    async def _on_receipt(self, receipt: DeliveryReceipt) -> None:
        code = receipt_status(receipt)
        if code is None:
            return  # ENROUTE / ACCEPTD: not final
        submit_id = await self._resolve(receipt.id)
        refs = self.matcher.refs(submit_id)
        assert self.sink is not None
        now = self.clock.now_ms()  # arrival time (spec §7: the time the report arrived)
        # Each with the hint of its submit, for a message whose submit was never recorded.
        reports = [
            LineReport(r, code, now, self.refs.hint(submit_id, k)) for k, r in enumerate(refs)
        ]
        await self.sink.delivery_reports(self.line, reports)

    async def _resolve(self, receipt_id: str) -> str:
        """The submit id of a receipt; waits a little for a submit_sm_resp still in flight."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.receipt_hold
        while True:
            hit = self.matcher.known(receipt_id)
            if hit is not None:
                return hit
            remaining = deadline - loop.time()
            if remaining <= 0 or not self._in_flight():
                return self.matcher.fallback(receipt_id)
            waiter: asyncio.Future[None] = loop.create_future()
            self._id_waiters.append(waiter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, remaining)

    async def _deliver_incoming(self, messages: Sequence[Assembled]) -> None:
        if not messages or self.sink is None:
            return
        now = self.clock.now_ms()
        sms = [
            IncomingSms(
                port=0,
                sender=m.sender,
                recipient=m.recipient,
                text=m.text,
                received_ms=now,
                smsc=f"{self.cfg.host}:{self.cfg.port}",
                parts=m.parts,
            )
            for m in messages
        ]
        await self.sink.incoming(self.line, sms)

    async def _sweep(self) -> None:
        """Deliver incoming messages whose missing parts never came."""
        period = min(5.0, self.cfg.reassembly_timeout / 4)
        while True:
            await self.clock.sleep(period)
            try:
                await self._deliver_incoming(self.reassembler.expired(self.clock.now_ms() / 1000))
            except Exception:
                log.exception("smpp %s: delivering partial messages failed", self.line)


def _tlv_receipt(pdu: DeliverSm | DataSm) -> DeliveryReceipt | None:
    """A receipt told only by receipted_message_id + message_state TLVs (no esm bit)."""
    rid, state = pdu.tlvs.receipted_message_id, pdu.tlvs.message_state
    if rid and isinstance(state, MessageState):
        return DeliveryReceipt(id=rid, stat=state.stat)
    return None
