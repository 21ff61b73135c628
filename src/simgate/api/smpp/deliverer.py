"""Sends an account's outbox rows (receipts, incoming SMS) on its receiving binds.

One task per account while it has a receiver or transceiver bind (issue 18). A row is
sent on whichever bind has room in its window; it stays in the outbox until an ESME
answers its deliver_sm with ESME_ROK, and is deleted then (in batches, committed before
the row may be sent again: a row whose answer is being recorded is still "in flight", so
it is never sent twice by one process). A negative answer (or a response timeout) retries
that row after a pause that doubles with each refusal of it, from 5 s up to 10 minutes, so
an ESME that keeps refusing a deliver_sm is not hammered with it until it expires; a lost
bind makes its rows due again at once, on any bind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from simgate.codecs.smpp import DeliverSm, SmppDecodeError, decode
from simgate.services.smpp_outbox import SmppOutbox

if TYPE_CHECKING:
    from simgate.api.smpp.connection import SmppConnection

log = logging.getLogger(__name__)

IDLE_POLL = 0.2  # seconds between outbox reads when nothing happens (and nothing wakes it)
RETRY_FIRST = 5.0  # seconds after a row's first refusal
RETRY_CAP = 600.0  # the longest pause between two tries of one row


def retry_delay(refusals: int) -> float:
    """The pause before the next try of a row refused ``refusals`` times (1, 2, ...)."""
    return min(RETRY_CAP, RETRY_FIRST * 2.0 ** min(refusals - 1, 32))


class Deliverer:
    def __init__(
        self,
        *,
        account_id: int,
        outbox: SmppOutbox,
        receivers: Callable[[], Sequence[SmppConnection]],
        idle_poll: float = IDLE_POLL,
    ) -> None:
        self.account_id = account_id
        self._idle_poll = idle_poll
        self._outbox = outbox
        self._receivers = receivers
        self._inflight: dict[int, SmppConnection | None] = {}  # row -> bind (None: acked)
        self._acked: list[int] = []
        self._retry_at: dict[int, float] = {}
        self._refusals: dict[int, int] = {}  # row -> refusals so far (this process)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def poke(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        # A flag, not cancel(): wait_for() in 3.11 can swallow a cancellation that races its
        # timeout, and the loop would go on for ever.
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 5.0)
            self._task = None
        await self._flush()

    # ---- answers from the binds ------------------------------------------------------
    def answered(self, row_id: int, *, ok: bool, now: float) -> None:
        if ok:
            self._inflight[row_id] = None  # in flight until the delete commits
            self._acked.append(row_id)
            self._refusals.pop(row_id, None)
        else:
            self._inflight.pop(row_id, None)
            refusals = self._refusals[row_id] = self._refusals.get(row_id, 0) + 1
            self._retry_at[row_id] = now + retry_delay(refusals)
        self._wake.set()

    def retry_at(self, row_id: int) -> float | None:
        """When a refused row may be sent again (loop time); None when not held back."""
        return self._retry_at.get(row_id)

    def lost(self, rows: Sequence[int]) -> None:
        """A bind closed with these rows unanswered: due again now."""
        for row in rows:
            if self._inflight.get(row) is not None:
                del self._inflight[row]
        self._wake.set()

    # ---- the loop --------------------------------------------------------------------
    async def _flush(self) -> None:
        if not self._acked:
            return
        ids, self._acked = self._acked, []
        try:
            await self._outbox.answered(ids)
        except Exception:
            log.exception(
                "smpp: recording %d answered deliver_sm failed; they will be resent", len(ids)
            )
        for row in ids:
            self._inflight.pop(row, None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._wake.clear()
            try:
                await self._flush()
                binds = [c for c in self._receivers() if c.can_deliver()]
                if binds:
                    await self._send(binds, loop.time())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("smpp: outbox of account %d", self.account_id)
                await asyncio.sleep(1.0)
            if not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_poll)

    async def _send(self, binds: list[SmppConnection], now: float) -> None:
        room = sum(c.session.config.window_size - c.session.outstanding for c in binds)
        if room <= 0:
            return
        limit = len(self._inflight) + len(self._retry_at) + room
        rows = await self._outbox.due(account_id=self.account_id, after_id=0, limit=limit)
        self.forget_gone([r.id for r in rows], now, complete=len(rows) < limit)
        turn = 0
        for row in rows:
            if row.id in self._inflight or self._retry_at.get(row.id, 0.0) > now:
                continue
            try:
                pdu = decode(row.pdu)
            except SmppDecodeError:
                log.error("smpp: outbox row %d is not a PDU; dropped", row.id)
                self._acked.append(row.id)
                continue
            if not isinstance(pdu, DeliverSm):
                continue
            sent = False
            for _ in range(len(binds)):
                conn = binds[turn % len(binds)]
                turn += 1
                if conn.can_deliver() and conn.deliver(row.id, pdu):
                    self._inflight[row.id] = conn
                    self._retry_at.pop(row.id, None)
                    sent = True
                    break
            if not sent:
                return  # every window is full: wait for answers

    def forget_gone(self, due: Sequence[int], now: float, *, complete: bool) -> None:
        """Drop the back-off of rows no longer in the outbox (answered elsewhere, expired):
        bounded by what the outbox holds. ``due`` is the ids read, oldest first, up to a
        limit (``complete`` when under it: every due row): a missing row below the last of
        them, or any missing row when complete, is gone."""
        if not self._retry_at:
            return
        present = set(due)
        last = float("inf") if complete else (due[-1] if due else 0)
        for row in [r for r, at in self._retry_at.items() if at <= now]:
            if row not in present and row < last:
                del self._retry_at[row]
                self._refusals.pop(row, None)
