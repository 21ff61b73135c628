"""Each port's state handed to whoever keeps it (the database, services/lines.py), so that
processes that do not drive the line can show it (issue 16: ``simgate lines list``, a
``serve``-only Dinstar/OpenVox API, the console).

Any change is kept at once except one of the signal alone, which is kept at most every
``signal_every_ms`` (+CSQ moves by one or two on every poll; a write per poll per port would
be noise). A skipped signal change is written by a later call once that time has passed
(the line calls every few seconds whether or not anything changed).
Saving runs in its own task, newest state per port, so a slow database never holds up a
modem; a failed save is retried with the next change.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from simgate.clock import Clock
from simgate.lines.base import PortInfo

log = logging.getLogger(__name__)

__all__ = ["PortStateKeeper", "SaveState"]

# (line name, the port as the line shows it, until when it is blocked in ms)
SaveState = Callable[[str, PortInfo, int], Awaitable[None]]


class PortStateKeeper:
    def __init__(self, *, line: str, clock: Clock, signal_every_ms: int) -> None:
        self._line = line
        self._clock = clock
        self._signal_every_ms = signal_every_ms
        self._save: SaveState | None = None
        self._kept: dict[int, tuple[PortInfo, int]] = {}  # what was last handed on
        self._kept_ms: dict[int, int] = {}
        self._due: dict[int, tuple[PortInfo, int]] = {}  # waiting for the writer
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def keep_with(self, save: SaveState) -> None:
        self._save = save

    def changed(self, info: PortInfo, *, blocked_until_ms: int) -> None:
        """The port may have changed: hand it on unless only its signal moved lately."""
        if self._save is None:
            return
        now = self._clock.now_ms()
        last = self._kept.get(info.index)
        if last is not None:
            if last == (info, blocked_until_ms):
                return
            only_signal = (
                last[1] == blocked_until_ms
                and dataclasses.replace(last[0], signal=info.signal) == info
            )
            if only_signal and now - self._kept_ms[info.index] < self._signal_every_ms:
                return
        self._kept[info.index] = (info, blocked_until_ms)
        self._kept_ms[info.index] = now
        self._due[info.index] = (info, blocked_until_ms)
        self._wake.set()

    def start(self) -> None:
        if self._save is not None and self._task is None:
            self._task = asyncio.create_task(self._write(), name=f"modem-{self._line}-state")

    async def stop(self, final: list[PortInfo] | None = None) -> None:
        """Stop the writer after saving what is due (and ``final``, the ports as they are
        left: nobody drives them any more)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for info in final or ():
            self._due[info.index] = (info, 0)
        await self._save_due()

    async def _write(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._save_due()

    async def _save_due(self) -> None:
        if self._save is None:
            return
        due, self._due = self._due, {}
        for index, (info, blocked_until_ms) in sorted(due.items()):
            try:
                await self._save(self._line, info, blocked_until_ms)
            except Exception as exc:  # the database away: the next change tries again
                log.warning("modem line %s port %d: state not kept: %s", self._line, index, exc)
                self._kept.pop(index, None)
