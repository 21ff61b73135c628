"""A running simgate with the SMPP server on 127.0.0.1 and an ESME client on our own
sans-IO session (ESME role), for the SMPP server tests."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simgate.api.smpp.listener import SmppListener
from simgate.codecs.smpp import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DeliverSm,
    Pdu,
    RequestReceived,
    ResponseReceived,
    Role,
    SessionConfig,
    SmppSession,
    decode,
    encode,
    make_response,
)
from simgate.domain.accounts import Account
from simgate.runtime import Runtime
from tests.conftest import make_settings

SYSTEM_ID = "esme1"
PASSWORD = "secret1"


@dataclass
class Rig:
    runtime: Runtime
    listener: SmppListener
    account: Account

    @property
    def port(self) -> int:
        return self.listener.port


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path,
    url: str,
    *,
    worker: bool = True,
    tps: int = 0,
    balance: str = "100",
    smpp: dict[str, Any] | None = None,
    **extra: Any,
) -> AsyncIterator[Rig]:
    cfg = {"enabled": True, "port": 0, **(smpp or {})}
    settings = make_settings(tmp_path, url, smpp_server=cfg, **extra)
    runtime = Runtime(settings, role="run")
    sv = await runtime.open()
    try:
        try:
            account = await sv.accounts.get_account("acme")
        except Exception:
            account = await sv.accounts.create_account(name="acme", balance=balance)
            assert sv.smpp_users is not None
            await sv.smpp_users.create(
                account="acme", system_id=SYSTEM_ID, password=PASSWORD, tps=tps, max_binds=8
            )
        if worker:
            await runtime.start_worker()
        listener = await runtime.start_smpp_server()
        assert listener is not None
        yield Rig(runtime, listener, account)
    finally:
        await runtime.close()


@dataclass
class Esme:
    """An ESME over asyncio streams driving our own session in the ESME role."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    session: SmppSession
    answer_deliver: bool = True
    # Answer this many deliver_sm, then drop the connection (the next ones stay unanswered).
    answer_limit: int | None = None
    answered: list[DeliverSm] = field(default_factory=list)
    responses: dict[int, asyncio.Future[Pdu]] = field(default_factory=dict)
    delivered: list[DeliverSm] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def connect(cls, port: int, *, window: int = 1000) -> Esme:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        config = SessionConfig(role=Role.ESME, window_size=window, enquire_link_interval=None)
        esme = cls(reader, writer, SmppSession(config, now=asyncio.get_running_loop().time()))
        esme._task = asyncio.get_running_loop().create_task(esme._read())
        return esme

    async def _read(self) -> None:
        try:
            while True:
                data = await self.reader.read(65536)
                now = asyncio.get_running_loop().time()
                if not data:
                    self.session.connection_lost(now)
                    break
                for ev in self.session.receive_data(data, now):
                    if isinstance(ev, ResponseReceived):
                        fut = self.responses.pop(ev.request.sequence_number, None)
                        if fut is not None and not fut.done():
                            fut.set_result(ev.response)
                    elif isinstance(ev, RequestReceived) and isinstance(ev.pdu, DeliverSm):
                        self.delivered.append(ev.pdu)
                        limit = self.answer_limit
                        if limit is not None and len(self.answered) >= limit:
                            await self._drop()
                            return
                        if self.answer_deliver:
                            self.writer.write(self.session.send(make_response(ev.pdu)))
                            self.answered.append(ev.pdu)
                self.writer.write(self.session.data_to_send())
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            for fut in self.responses.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("closed"))

    async def _drop(self) -> None:
        """Leave with deliver_sm unanswered, but every answer counted in ``answered`` on the
        wire: flush, half-close, and read (unanswered) until the server closes. An abort()
        would discard the unsent answers, and closing with unread data sends an RST that can
        make the server's kernel drop answers it has received but not yet read."""
        self.writer.write(self.session.data_to_send())
        await self.writer.drain()
        self.writer.write_eof()
        while await self.reader.read(65536):
            pass
        self.writer.close()

    def send_nowait(self, pdu: Pdu) -> asyncio.Future[Pdu]:
        data = self.session.send(pdu, asyncio.get_running_loop().time())
        fut: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        self.responses[int.from_bytes(data[12:16], "big")] = fut
        self.writer.write(data)
        return fut

    async def request(self, pdu: Pdu, within: float = 10.0) -> Pdu:
        return await asyncio.wait_for(self.send_nowait(pdu), within)

    async def bind(
        self,
        kind: str = "trx",
        *,
        system_id: str = SYSTEM_ID,
        password: str = PASSWORD,
        within: float = 10.0,
    ) -> Pdu:
        cls = {"tx": BindTransmitter, "rx": BindReceiver, "trx": BindTransceiver}[kind]
        return await self.request(cls(system_id=system_id, password=password), within)

    async def close(self) -> None:
        self.writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def read_pdu(reader: asyncio.StreamReader, within: float = 10.0) -> Pdu:
    """One PDU from a raw stream (no session: for what a session would not send)."""
    header = await asyncio.wait_for(reader.readexactly(4), within)
    body = await asyncio.wait_for(reader.readexactly(int.from_bytes(header, "big") - 4), within)
    return decode(header + body)


async def raw_requests(port: int, pdus: list[Pdu]) -> list[Pdu]:
    """Send each PDU on a fresh raw connection, one after the other, and read each answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers: list[Pdu] = []
    try:
        for seq, pdu in enumerate(pdus, start=1):
            writer.write(encode(dataclasses.replace(pdu, sequence_number=seq)))
            answers.append(await read_pdu(reader))
    finally:
        writer.close()
    return answers
