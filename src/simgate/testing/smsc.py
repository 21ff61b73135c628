"""A scriptable SMSC for unit tests, built on our own sans-IO session in the SMSC role.

Named behaviours::

    FakeSmsc()                          accept everything, receipts after the response
    FakeSmsc.answers(0x45)              answer every submit_sm with that status
    FakeSmsc.throttles(after=3)         accept 3, then ESME_RTHROTTLED (``times`` of them)
    FakeSmsc.silent()                   never answer submit_sm
    FakeSmsc.drops_after(5)             answer 5, then drop the connection on the next one
    FakeSmsc.receipt_before_resp()      send the receipt before the submit_sm_resp

Options: ``receipt_ids="decimal"`` (receipts quote the hex id in decimal),
``receipts_on_other_bind`` (receipts go out on another bound session), ``stat`` (receipt
state text), ``tlv_receipts`` (add receipted_message_id/message_state TLVs). It records
every submit_sm (``submits``), every accepted id (``accepted``), and the statuses of our
deliver_sm answers (``deliver_answers``). Bound to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import ssl
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from simgate.codecs.smpp import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CommandStatus,
    DeliverSm,
    DeliveryReceipt,
    EsmClass,
    MessageState,
    Pdu,
    RequestAborted,
    RequestReceived,
    ResponseReceived,
    ResponseTimeout,
    Role,
    SessionConfig,
    SmppSession,
    SubmitSm,
    Tlvs,
    format_receipt,
    make_response,
)

_RECEIVING = (BindReceiver, BindTransceiver)


@dataclasses.dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    session: SmppSession
    index: int
    kind: str = ""
    pending: dict[int, asyncio.Future[int]] = dataclasses.field(default_factory=dict)

    def write(self, data: bytes) -> None:
        if data and not self.writer.is_closing():
            self.writer.write(data)


class FakeSmsc:
    def __init__(
        self,
        *,
        status: int = CommandStatus.ESME_ROK,
        throttle_after: int | None = None,
        throttle_times: int | None = None,
        silent: bool = False,
        drop_after: int | None = None,
        receipt_first: bool = False,
        receipts: bool = True,
        receipt_ids: str = "hex",
        receipts_on_other_bind: bool = False,
        stat: str | Callable[[SubmitSm], str] = "DELIVRD",
        tlv_receipts: bool = False,
        status_for: Callable[[int, SubmitSm], int] | None = None,
    ) -> None:
        self.status = status
        self.throttle_after = throttle_after
        self.throttle_times = throttle_times
        self.silent_mode = silent
        self.drop_after = drop_after
        self.receipt_first = receipt_first
        self.receipts = receipts
        self.receipt_ids = receipt_ids
        self.receipts_on_other_bind = receipts_on_other_bind
        self.stat = stat
        self.tlv_receipts = tlv_receipts
        self.status_for = status_for  # (index of the submit, pdu) -> status: full scripting
        self.submits: list[SubmitSm] = []
        self.accepted: dict[str, SubmitSm] = {}
        self.deliver_answers: list[int] = []
        self.conns: list[_Conn] = []
        self.binds = 0
        self._throttled = 0
        self._answered = 0
        self._ids = itertools.count(0x3A000001)
        self._server: asyncio.Server | None = None

    # ---- named behaviours --------------------------------------------------------------
    @classmethod
    def answers(cls, status: int, **kw: Any) -> FakeSmsc:
        return cls(status=status, **kw)

    @classmethod
    def throttles(cls, after: int, times: int | None = None, **kw: Any) -> FakeSmsc:
        return cls(throttle_after=after, throttle_times=times, **kw)

    @classmethod
    def silent(cls, **kw: Any) -> FakeSmsc:
        return cls(silent=True, **kw)

    @classmethod
    def drops_after(cls, n: int, **kw: Any) -> FakeSmsc:
        return cls(drop_after=n, **kw)

    @classmethod
    def receipt_before_resp(cls, **kw: Any) -> FakeSmsc:
        return cls(receipt_first=True, **kw)

    # ---- server ------------------------------------------------------------------------
    async def start(self, tls: ssl.SSLContext | None = None) -> int:
        """Listen on 127.0.0.1 (TLS when ``tls`` is a server context); returns the port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        return self.port

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in self.conns:
            conn.writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def __aenter__(self) -> FakeSmsc:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        config = SessionConfig(role=Role.SMSC, window_size=1000, enquire_link_interval=None)
        conn = _Conn(reader, writer, SmppSession(config, now=time.monotonic()), len(self.conns))
        self.conns.append(conn)
        try:
            while not conn.session.closed:
                data = await reader.read(65536)
                now = time.monotonic()
                if not data:
                    conn.session.connection_lost(now)
                    break
                for ev in conn.session.receive_data(data, now):
                    if conn.writer.is_closing():
                        break  # dropped: what is left in the stream is never processed
                    self._on_event(conn, ev)
                conn.write(conn.session.data_to_send())
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            for fut in conn.pending.values():
                if not fut.done():
                    fut.set_result(-1)

    def _on_event(self, conn: _Conn, ev: object) -> None:
        if isinstance(ev, ResponseReceived):
            fut = conn.pending.pop(ev.request.sequence_number, None)
            status = ev.response.command_status
            self.deliver_answers.append(status)
            if fut is not None and not fut.done():
                fut.set_result(status)
        elif isinstance(ev, ResponseTimeout | RequestAborted):
            fut = conn.pending.pop(ev.request.sequence_number, None)
            if fut is not None and not fut.done():
                fut.set_result(-1)
        elif isinstance(ev, RequestReceived):
            pdu = ev.pdu
            if isinstance(pdu, BindTransmitter | BindReceiver | BindTransceiver):
                conn.kind = type(pdu).__name__
                self.binds += 1
                conn.write(conn.session.send(make_response(pdu, system_id="fakesmsc")))
            elif isinstance(pdu, SubmitSm):
                self._on_submit(conn, pdu)

    def _on_submit(self, conn: _Conn, pdu: SubmitSm) -> None:
        if self.drop_after is not None and self._answered >= self.drop_after:
            self.drop_after = None  # once: the next connection works normally
            conn.writer.close()
            return
        self.submits.append(pdu)
        if self.silent_mode:
            return
        status = self.status
        after = self.throttle_after
        if after is not None and self._answered >= after and self._more_throttles():
            self._throttled += 1
            status = CommandStatus.ESME_RTHROTTLED
        if self.status_for is not None:
            status = self.status_for(self._answered, pdu)
        self._answered += 1
        if status != CommandStatus.ESME_ROK:
            conn.write(conn.session.send(make_response(pdu, status)))
            return
        message_id = format(next(self._ids), "x")
        self.accepted[message_id] = pdu
        resp = conn.session.send(make_response(pdu, message_id=message_id))
        if pdu.registered_delivery & 1 and self.receipts:
            receipt = self._receipt_pdu(message_id, pdu)
            target = self._receipt_conn(conn)
            if self.receipt_first:
                self._push(target, receipt)  # written before the response below
                conn.write(resp)
                return
            conn.write(resp)
            self._push(target, receipt)
            return
        conn.write(resp)

    def _more_throttles(self) -> bool:
        return self.throttle_times is None or self._throttled < self.throttle_times

    def _receipt_conn(self, conn: _Conn) -> _Conn:
        live = [c for c in self.conns if not c.session.closed and c.kind in _RECEIVING_NAMES]
        if self.receipts_on_other_bind:
            others = [c for c in live if c is not conn]
            if others:
                return others[-1]
        return conn if conn.kind in _RECEIVING_NAMES or not live else live[-1]

    def _receipt_pdu(self, message_id: str, submit: SubmitSm) -> DeliverSm:
        stat = self.stat(submit) if callable(self.stat) else self.stat
        shown = str(int(message_id, 16)).zfill(10) if self.receipt_ids == "decimal" else message_id
        now = datetime.now().replace(microsecond=0)
        text = format_receipt(
            DeliveryReceipt(
                id=shown, sub=1, dlvrd=1 if stat == "DELIVRD" else 0, submit_date=now,
                done_date=now, stat=stat, err="000" if stat == "DELIVRD" else "001", text="",
            )
        )  # fmt: skip
        tlvs = Tlvs()
        state = MessageState.from_stat(stat)
        if self.tlv_receipts and state is not None:
            tlvs = Tlvs.build(receipted_message_id=shown, message_state=int(state))
        return DeliverSm(
            source_addr=submit.destination_addr,
            destination_addr=submit.source_addr,
            esm_class=EsmClass.SMSC_DELIVERY_RECEIPT,
            short_message=text.encode("ascii"),
            tlvs=tlvs,
        )

    # ---- pushing deliver_sm ------------------------------------------------------------
    def _push(self, conn: _Conn, pdu: Pdu) -> asyncio.Future[int]:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if conn.session.closed:
            fut.set_result(-1)
            return fut
        data = conn.session.send(pdu, time.monotonic())
        conn.pending[int.from_bytes(data[12:16], "big")] = fut
        conn.write(data)
        return fut

    async def deliver_on(self, conn: _Conn, pdu: Pdu) -> int:
        """Send a deliver_sm on ``conn``; the status of the ESME's answer (-1: none)."""
        return await self._push(conn, pdu)

    async def deliver(self, pdu: Pdu) -> int:
        """Send a deliver_sm on the newest bound receiving session."""
        live = [c for c in self.conns if not c.session.closed and c.kind in _RECEIVING_NAMES]
        if not live:
            raise RuntimeError("no receiving bind")
        return await self.deliver_on(live[-1], pdu)

    def drop_all(self) -> None:
        for conn in self.conns:
            conn.writer.close()


_RECEIVING_NAMES = frozenset(cls.__name__ for cls in _RECEIVING)
