"""smpp34's server (a second, independent SMPP implementation with a Rust core) as an SMSC,
in-process: it answers every submit_sm with a decimal id and, unless told otherwise, sends a
receipt for it; tests also send deliver_sm (receipts, incoming SMS) through its sessions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import smpp34

from simgate.codecs.smpp import format_receipt
from simgate.codecs.smpp.receipt import DeliveryReceipt
from simgate.testing.procs import free_port


class Smpp34Smsc:
    """smpp34.Server answering every submit_sm (and sending a receipt when ``receipts``)."""

    def __init__(self, *, receipts: bool = True) -> None:
        self.port = free_port()
        self.server = smpp34.Server("127.0.0.1", self.port, system_id="smpp34")
        self.receipts = receipts
        self.esmes: dict[str, smpp34.Esme] = {}
        self.submits: list[smpp34.SubmitSmEvent] = []
        self.accepted: list[str] = []  # the message_id answered to each submit_sm
        self.receipt_answers: list[int] = []
        self._ids = iter(range(7_000_001, 8_000_000))
        self._tasks: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        while True:
            item = await self.server.next()
            if isinstance(item, smpp34.Esme):
                self.esmes[item.session_id] = item
            elif isinstance(item, smpp34.SubmitSmEvent):
                self.submits.append(item)
                message_id = str(next(self._ids))  # decimal ids, as many SMSCs do
                item.accept(message_id)
                self.accepted.append(message_id)
                if self.receipts and item.registered_delivery & 1:
                    task = asyncio.create_task(self._receipt(item, message_id))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    async def _receipt(self, submit: smpp34.SubmitSmEvent, message_id: str) -> None:
        esme = self.esmes[submit.session_id]
        status = await self.send_receipt(esme, message_id, submit.destination_addr)
        self.receipt_answers.append(status)

    async def send_receipt(self, esme: smpp34.Esme, message_id: str, handset: str) -> int:
        """A DELIVRD receipt for ``message_id``; the command_status of its answer."""
        text = format_receipt(
            DeliveryReceipt(id=message_id, sub=1, dlvrd=1, stat="DELIVRD", err="000")
        )
        resp = await esme.deliver_sm("simgate", text.encode(), source_addr=handset, esm_class=4)
        return int(resp.command_status)

    async def session(self, within: float = 5.0) -> smpp34.Esme:
        """The newest bound session that can receive deliver_sm (waits, bounded, for one)."""
        for _ in range(int(within / 0.02)):
            live = [e for e in self.esmes.values() if e.can_receive]
            if live:
                return live[-1]
            await asyncio.sleep(0.02)
        raise AssertionError("no ESME bound to the smpp34 server")


@contextlib.asynccontextmanager
async def running(*, receipts: bool = True) -> AsyncIterator[Smpp34Smsc]:
    smsc = Smpp34Smsc(receipts=receipts)
    await smsc.server.start()
    task = asyncio.create_task(smsc.serve())
    try:
        yield smsc
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await smsc.server.stop()
