"""Submits of one account gathered into one send while the previous one commits.

Each submit_sm alone would cost a transaction of its own (charge, insert, commit) and its
round trips to the database thread. Submits that arrive while a send of the same account
(and encoding and receipt wish) is in flight wait for it to finish and then go together, in
one call of the send service: one charge, one multi-row insert, one commit. Nothing waits
when nothing is in flight, so a lone submit is answered as fast as before. When the lot is
refused as a whole (the balance covers some but not all, a number has no route), each
message is sent alone so every submit gets its own answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from simgate.api.smpp.errors import status_of
from simgate.codecs.segments import Encoding
from simgate.codecs.smpp import CommandStatus
from simgate.domain.accounts import Account
from simgate.services.smpp_gateway import Delivery, Outgoing, Rejected, SmppGateway, Submitted

log = logging.getLogger(__name__)

MAX_BATCH = 500
# account, encoding, receipt wish with schedule and validity (a send shares them all)
Key = tuple[int, Encoding | None, Delivery]
# (status, message id or None)
Result = tuple[int, int | None]


@dataclass
class _Lane:
    account: Account
    waiting: list[tuple[Outgoing, asyncio.Future[Result]]] = field(default_factory=list)
    busy: bool = False


class SubmitBatcher:
    def __init__(
        self, gateway: SmppGateway, *, on_error: Callable[[Exception], None] | None = None
    ) -> None:
        self._gateway = gateway
        self._lanes: dict[Key, _Lane] = {}
        self._on_error = on_error

    def submit(
        self, *, account: Account, item: Outgoing, encoding: Encoding | None, delivery: Delivery
    ) -> Awaitable[Result]:
        key = (account.id, encoding, delivery)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(account)
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        lane.waiting.append((item, fut))
        if not lane.busy:
            lane.busy = True
            # Soon, not now: the other PDUs of the same read join this first send.
            asyncio.get_running_loop().call_soon(self._start, key)
        return fut

    def _start(self, key: Key) -> None:
        asyncio.get_running_loop().create_task(self._drain(key))

    async def _drain(self, key: Key) -> None:
        lane = self._lanes[key]
        try:
            while lane.waiting:
                batch, lane.waiting = lane.waiting[:MAX_BATCH], lane.waiting[MAX_BATCH:]
                await self._send(lane.account, key, batch)
        finally:
            lane.busy = False
            if not lane.waiting:
                self._lanes.pop(key, None)

    async def _send(
        self, account: Account, key: Key, batch: list[tuple[Outgoing, asyncio.Future[Result]]]
    ) -> None:
        _, encoding, delivery = key
        try:
            results = await self._gateway.submit_many(
                account=account,
                items=[i for i, _ in batch],
                encoding=encoding,
                report=delivery.report,
                delivery=delivery,
            )
        except Exception as exc:
            if len(batch) > 1:
                for one in batch:  # every submit gets its own answer
                    await self._send(account, key, [one])
                return
            if self._on_error is not None:
                self._on_error(exc)
            _settle(batch[0][1], (status_of(exc), None))
            return
        for (_, fut), result in zip(batch, results, strict=True):
            if isinstance(result, Submitted):
                _settle(fut, (CommandStatus.ESME_ROK, result.message_id))
            else:
                assert isinstance(result, Rejected)
                _settle(fut, (CommandStatus.ESME_RINVDSTADR, None))


def _settle(fut: asyncio.Future[Result], value: Result) -> None:
    if not fut.done():
        fut.set_result(value)
