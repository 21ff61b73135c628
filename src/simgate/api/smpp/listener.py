"""The SMPP server's listener: accepts ESME connections and owns every bind (issue 18).

Hostile input (issue 18 "Done when"): connections beyond ``max_connections`` are closed at
once; each session reads at most one PDU of ``max_pdu_bytes`` at a time (a longer
command_length ends the connection, the framer never buffers more); a connection that does
not bind within the session-init time, or goes silent for the inactivity time, is closed and
frees what it held (window slots, in-flight deliver_sm, parts of long messages stay keyed by
account and expire on their own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Coroutine, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from simgate.api.smpp.batcher import SubmitBatcher
from simgate.api.smpp.concat import Pending, Reassembly
from simgate.api.smpp.connection import SmppConnection
from simgate.api.smpp.deliverer import Deliverer
from simgate.api.smpp.errors import status_of
from simgate.api.smpp.metrics import SmppMetrics
from simgate.api.smpp.submit import Piece
from simgate.api.smpp.throttle import TokenBucket
from simgate.codecs.smpp import CommandStatus, DataSm, SubmitSm
from simgate.codecs.text import decode_text, join_parts
from simgate.services.smpp_gateway import Delivery, Outgoing, SmppGateway, format_message_id
from simgate.services.smpp_outbox import SmppOutbox
from simgate.services.smpp_users import BindGrant, SmppUser, SmppUserService
from simgate.settings import SmppServerSettings

log = logging.getLogger(__name__)

HOUSEKEEPING_SECONDS = 5.0


class SmppListener:
    def __init__(
        self,
        *,
        settings: SmppServerSettings,
        users: SmppUserService,
        gateway: SmppGateway,
        outbox: SmppOutbox,
        registry: CollectorRegistry,
        node: str | None = None,
    ) -> None:
        self.settings = settings
        self.users = users
        self.gateway = gateway
        self.outbox = outbox
        self.metrics = SmppMetrics(registry)
        self.node = node or f"{socket.gethostname()}:{settings.port}"[:64]
        self._servers: list[asyncio.Server] = []
        self._conns: set[SmppConnection] = set()
        self._binds: dict[str, int] = {}  # system_id -> open binds (this process)
        self._receivers: dict[int, list[SmppConnection]] = {}  # account -> rx/trx binds
        self._deliverers: dict[int, Deliverer] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._parts = Reassembly(timeout=settings.reassembly_seconds)
        self._batcher = SubmitBatcher(gateway, on_error=self._submit_failed)
        self._housekeeping: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        outbox.watch(self._rows_stored)  # receipts the worker stores, in any process

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        cfg = self.settings
        await self.users.forget_node(self.node)  # binds a previous run left in the table
        loop = asyncio.get_running_loop()
        self._servers.append(
            await loop.create_server(lambda: SmppConnection(self), cfg.host, cfg.port)
        )
        if cfg.tls_port is not None and cfg.tls_cert and cfg.tls_key:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
            self._servers.append(
                await loop.create_server(
                    lambda: SmppConnection(self), cfg.host, cfg.tls_port, ssl=context
                )
            )
        self._housekeeping = loop.create_task(self._keep_house())
        log.info("smpp server listening on %s:%d", cfg.host, self.port)

    @property
    def port(self) -> int:
        return int(self._servers[0].sockets[0].getsockname()[1])

    @property
    def tls_port(self) -> int | None:
        if len(self._servers) < 2:
            return None
        return int(self._servers[1].sockets[0].getsockname()[1])

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for conn in list(self._conns):
            conn.close()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._housekeeping
        for deliverer in list(self._deliverers.values()):
            await deliverer.stop()  # records the answers it has
        self._deliverers.clear()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 2.0)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        self._servers.clear()
        with contextlib.suppress(Exception):
            await self.users.forget_node(self.node)

    # ---- connections -----------------------------------------------------------------
    @property
    def connections(self) -> int:
        return len(self._conns)

    def admit(self, conn: SmppConnection) -> bool:
        if len(self._conns) >= self.settings.max_connections:
            log.warning("smpp: connection cap %d reached, %s refused", len(self._conns), conn.peer)
            return False
        self._conns.add(conn)
        self.metrics.connections.set(len(self._conns))
        return True

    def release(self, conn: SmppConnection) -> None:
        """A connection closed: free its bind, its window and its in-flight deliver_sm."""
        self._conns.discard(conn)
        self.metrics.connections.set(len(self._conns))
        grant = conn.grant
        if grant is None:
            return
        system_id = grant.user.system_id
        self._binds[system_id] = max(0, self._binds.get(system_id, 0) - 1)
        self.metrics.binds.labels(system_id, conn.bind_type).dec()
        receivers = self._receivers.get(grant.account.id, [])
        if conn in receivers:
            receivers.remove(conn)
        deliverer = self._deliverers.get(grant.account.id)
        if deliverer is not None:
            # The deliverer stays (idle) after its last bind: answers it is still recording
            # must commit before a new bind may be sent those rows again.
            deliverer.lost(list(conn.deliveries.values()))
            conn.deliveries.clear()
        if conn.bind_row is not None:
            self._spawn(self.users.unbound(conn.bind_row))

    def may_bind(self, grant: BindGrant) -> bool:
        return self._binds.get(grant.user.system_id, 0) < grant.user.max_binds

    def bound(self, conn: SmppConnection) -> None:
        grant = conn.grant
        assert grant is not None
        user = grant.user
        self._binds[user.system_id] = self._binds.get(user.system_id, 0) + 1
        self.metrics.binds.labels(user.system_id, conn.bind_type).inc()
        self._spawn(self._record_bind(conn))
        if conn.bind_type in ("rx", "trx"):
            account = grant.account.id
            self._receivers.setdefault(account, []).append(conn)
            deliverer = self._deliverers.get(account)
            if deliverer is None:
                deliverer = self._deliverers[account] = Deliverer(
                    account_id=account,
                    outbox=self.outbox,
                    receivers=lambda: self._receivers.get(account, []),
                    idle_poll=self.settings.deliver_poll_seconds,
                )
            deliverer.start()
            deliverer.poke()

    def _rows_stored(self) -> None:
        for deliverer in self._deliverers.values():
            deliverer.poke()

    async def _record_bind(self, conn: SmppConnection) -> None:
        grant = conn.grant
        assert grant is not None
        try:
            conn.bind_row = await self.users.bound(
                node=self.node,
                system_id=grant.user.system_id,
                bind_type=conn.bind_type,
                peer=conn.peer,
            )
        except Exception:
            log.exception("smpp: recording the bind of %r failed", grant.user.system_id)
            return
        if conn not in self._conns:  # closed while we recorded it
            await self.users.unbound(conn.bind_row)

    def receivers(self, account_id: int) -> Sequence[SmppConnection]:
        return self._receivers.get(account_id, [])

    def delivered(self, conn: SmppConnection, row: int, *, ok: bool) -> None:
        grant = conn.grant
        deliverer = self._deliverers.get(grant.account.id) if grant is not None else None
        if deliverer is not None:
            deliverer.answered(row, ok=ok, now=asyncio.get_running_loop().time())

    # ---- submit ----------------------------------------------------------------------
    def take_token(self, user: SmppUser, now: float) -> bool:
        if user.tps <= 0:
            return True
        bucket = self._buckets.get(user.system_id)
        if bucket is None or bucket.rate != user.tps:
            bucket = self._buckets[user.system_id] = TokenBucket(rate=user.tps, now=now)
        return bucket.take(now)

    def hold_part(self, conn: SmppConnection, pdu: SubmitSm | DataSm, piece: Piece) -> None:
        grant = conn.grant
        assert grant is not None
        if self._parts.full():
            conn.answer_submit(pdu, CommandStatus.ESME_RMSGQFUL, "")
            return

        def answer(status: int, shown: str) -> None:
            conn.answer_submit(pdu, status, shown)

        loop = asyncio.get_running_loop()
        whole = self._parts.add(grant.account.id, piece, answer, loop.time())
        if whole is not None:
            self._spawn(self._submit_whole(conn, whole))

    async def _submit_whole(self, conn: SmppConnection, whole: Pending) -> None:
        pieces = [whole.pieces[seq] for seq in sorted(whole.pieces)]
        status, shown = await self.submit(conn, pieces)
        for answer in whole.answers:
            answer(status, shown)

    async def submit(self, conn: SmppConnection, pieces: list[Piece]) -> tuple[int, str]:
        """Accept a whole message (one piece, or a long message's parts in order); returns
        (status, message id as shown) after the commit."""
        grant = conn.grant
        assert grant is not None
        first = pieces[0]
        if len(pieces) == 1:
            text = decode_text(first.body, first.data_coding)
        else:
            text = join_parts([(p.data_coding, p.body) for p in pieces])
        system_id = grant.user.system_id
        status, message_id = await self._batcher.submit(
            account=grant.account,
            item=Outgoing(sender=first.sender, to=first.to, text=text),
            encoding=first.encoding,
            delivery=delivery_of(pieces),
        )
        if message_id is None:
            refused = status == CommandStatus.ESME_RINVDSTADR
            self.metrics.count(system_id, "refused" if refused else "failed")
            return status, ""
        self.metrics.count(system_id, "accepted")
        return CommandStatus.ESME_ROK, format_message_id(message_id, self.settings.message_id_base)

    def _submit_failed(self, exc: Exception) -> None:
        if status_of(exc) == CommandStatus.ESME_RSYSERR:
            log.error("smpp: submit failed: %s", exc, exc_info=exc)

    # ---- housekeeping ----------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _keep_house(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            for whole in self._parts.expire(loop.time()):
                for answer in whole.answers:
                    answer(CommandStatus.ESME_RSUBMITFAIL, "")
            try:
                await self.outbox.purge_expired()
                pending = await self.outbox.pending()
            except Exception:
                log.exception("smpp: outbox housekeeping failed")
                continue
            self.metrics.pending.clear()
            for account_id, count in pending.items():
                self.metrics.pending.labels(str(account_id)).set(count)


def delivery_of(pieces: Sequence[Piece]) -> Delivery:
    """The receipt wish, schedule and validity of a whole message: a receipt if any part
    asked for one (on failure only if every part that asked said so), one per part when
    more than one part asked (services/smpp_gateway.py ``Delivery.per_part``), schedule and
    validity from the first part (SMPP v3.4 §4.4.1 gives each part its own; a long message
    goes out whole)."""
    asked = [p for p in pieces if p.report]
    first = pieces[0]
    return Delivery(
        report=bool(asked),
        failure_only=bool(asked) and all(p.failure_only for p in asked),
        not_before_ms=first.not_before_ms,
        valid_until_ms=first.valid_until_ms,
        per_part=len(asked) > 1,
    )
