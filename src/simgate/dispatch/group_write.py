"""Group commit: items handed over while a write runs go together in the next write.

A finished call costs a transaction's worth of statements when written alone; written with
every other call that finished meanwhile it costs a share of one (bench/voice_calls.py: a
finish per call was 45x slower). Each caller still waits for its own item to be written, and
sees that write's error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupWrite(Generic[T]):
    def __init__(self, write: Callable[[list[T]], Awaitable[object]]) -> None:
        self._write = write
        self._queued: list[tuple[T, asyncio.Future[None]]] = []
        self._flushing = False

    async def add(self, item: T) -> None:
        """Return once ``item`` is written (with whatever else was queued)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((item, done))
        if not self._flushing:
            self._flushing = True
            asyncio.create_task(self._flush())  # noqa: RUF006 (awaited through ``done``)
        await done

    async def _flush(self) -> None:
        """Write everything queued so far in one go, until nothing is left."""
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                try:
                    await self._write([item for item, _ in batch])
                except Exception as exc:  # every waiter sees it
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for _, fut in batch:
                    if not fut.done():
                        fut.set_result(None)
        finally:
            self._flushing = False
