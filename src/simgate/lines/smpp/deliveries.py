"""What the SMSC delivers to us (deliver_sm / data_sm): receipts, incoming SMS and parts.

Each is committed through the sink before the bind answers the PDU (the answer is the
return value of :meth:`Deliveries.handle`), so an SMSC only forgets what simgate stored:
also a part of a long incoming SMS, which the sink keeps durably and reassembles. Every few
seconds the line asks the sink to store, as they are, messages whose parts stopped coming
for ``reassembly_timeout``: from the rows, so it also ends those begun before a restart.
Receipt ids are resolved with the line's :class:`~.receipts.ReceiptMatcher`; a receipt
for an id not seen yet waits up to ``receipt_hold`` seconds while submit_sm are in flight
(the receipt often overtakes its submit_sm_resp), then falls back to the matcher's guess,
which the store keeps as an orphan until the part is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

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
from simgate.errors import Busy
from simgate.lease_loop import FailureRun
from simgate.lines.base import InboundSink, IncomingPart, LineReport
from simgate.lines.smpp.inbound import incoming_of, receipt_status
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
        # Parts still waiting stay in the store: the next start joins them with the rest.

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
        assert self.sink is not None
        smsc = f"{self.cfg.host}:{self.cfg.port}"
        got = incoming_of(pdu, received_ms=self.clock.now_ms(), smsc=smsc)
        if isinstance(got, IncomingPart):
            try:
                await self.sink.incoming_parts(self.line, [got])
            except Busy as exc:  # a flood of parts that never end: the SMSC retries later
                log.warning("smpp %s: part refused for now: %s", self.line, exc)
                return CommandStatus.ESME_RX_T_APPN
        else:
            await self.sink.incoming(self.line, [got])
        return CommandStatus.ESME_ROK

    async def _on_receipt(self, receipt: DeliveryReceipt) -> None:
        code = receipt_status(receipt)
        if code is None:
            return  # ENROUTE / ACCEPTD: not final
        submit_id = await self._resolve(receipt.id)
        assert self.sink is not None
        now = self.clock.now_ms()  # arrival time (spec §7: the time the report arrived)
        # One report per SMSC id: in payload mode every part carries it (receipts.part_refs).
        # With the hint of its submit, for a message whose submit was never recorded.
        report = LineReport(submit_id, code, now, self.refs.hint(submit_id))
        await self.sink.delivery_reports(self.line, [report])

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

    async def _sweep(self) -> None:
        """Have the messages whose missing parts never came stored as they are."""
        timeout_ms = round(self.cfg.reassembly_timeout * 1000)
        period = min(5.0, self.cfg.reassembly_timeout / 4)
        # A database outage: two lines (down, up again), not one per sweep (issue 14 #10).
        failures = FailureRun(
            f"smpp {self.line}: storing partial messages", clock=self.clock, logger=log
        )
        while True:
            await self.clock.sleep(period)
            assert self.sink is not None
            try:
                before = self.clock.now_ms() - timeout_ms
                await self.sink.expire_parts(self.line, started_before_ms=before)
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.succeeded()


def _tlv_receipt(pdu: DeliverSm | DataSm) -> DeliveryReceipt | None:
    """A receipt told only by receipted_message_id + message_state TLVs (no esm bit)."""
    rid, state = pdu.tlvs.receipted_message_id, pdu.tlvs.message_state
    if rid and isinstance(state, MessageState):
        return DeliveryReceipt(id=rid, stat=state.stat)
    return None
