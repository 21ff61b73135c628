"""``asyncio.gather`` whose coroutines take their first step at once, without a Task each.

The dispatcher submits a batch concurrently (a line may wait for latency, ports, an SMPP
window), but the sim line, and any line that takes a message without waiting, finishes in its
first step: a Task per message (scheduled, stepped, its result gathered) was about a twentieth
of the dispatcher's CPU for nothing (issue 15). Python 3.12's eager task factory does this
for a whole loop; here it is for one call only. A coroutine that does wait goes on in a Task
of its own from where it stopped, so concurrency is as with ``gather``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Coroutine, Generator, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

__all__ = ["gather_eager"]


async def gather_eager(coros: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """The results of ``coros`` in order (the first exception propagates, as ``gather``)."""
    results: list[Any] = []
    waiting: list[tuple[int, asyncio.Future[T]]] = []
    for i, coro in enumerate(coros):
        try:
            yielded = coro.send(None)
        except StopIteration as done:
            results.append(done.value)
            continue
        results.append(None)
        task = asyncio.ensure_future(_GoOn(coro, yielded))
        task.add_done_callback(functools.partial(_close_unfinished, coro))
        waiting.append((i, task))
    if waiting:
        got = await asyncio.gather(*(f for _, f in waiting))
        for (i, _), value in zip(waiting, got, strict=True):
            results[i] = value
    return results


def _close_unfinished(coro: Coroutine[Any, Any, Any], _: object) -> None:
    """A Task cancelled before its first step never enters the coroutine, which a plain
    ``gather`` would not have started either; this one did start, so it is closed now (its
    ``finally`` blocks run) rather than whenever it is collected."""
    if inspect.getcoroutinestate(coro) == inspect.CORO_SUSPENDED:
        try:
            coro.close()
        except RuntimeError:  # it awaited while closing: nothing more can be done for it
            log.exception("a submit could not be closed after its cancel")


class _GoOn(Generic[T]):
    """A coroutine that already took its first step and yielded ``yielded`` (the future it
    waits for, or None for a bare yield), continued by whatever awaits this: what it yields
    is passed up to the Task, what the Task sends or throws is passed down."""

    __slots__ = ("_coro", "_yielded")

    def __init__(self, coro: Coroutine[Any, Any, T], yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, T]:
        coro, yielded = self._coro, self._yielded
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:  # a cancel (or close) for the waiting coroutine
                try:
                    yielded = coro.throw(exc)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
