"""What the lines' state changes: which worker drives an exclusive line, ports going up or
down, and USSD answers on a port (the Dinstar ``port`` and ``ussd`` pushes, spec §2.9).

Modem ports' state (issue 16) is known live only to the process driving the line; that
process keeps it in the database (store/port_state.py) and the others show the stored one,
refreshed every ``STORED_REFRESH_S``, with its age (:meth:`LineService.port_views`).

Port actions and USSD (:meth:`LineService.control_port`, :meth:`LineService.ussd`) run where
the lines are started: here (:class:`LocalPorts`), or, in ``run --worker-process``'s HTTP
process, in its worker child (cli/port_remote.py), with the same answers.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.clock import Clock
from simgate.domain.events import PortChanged, UssdReplied
from simgate.lines.base import (
    Line,
    PortAction,
    PortControlLine,
    PortInfo,
    UssdLine,
    UssdResult,
)
from simgate.services.changes import Publish
from simgate.store import Store, owners, port_state

log = logging.getLogger(__name__)

STORED_REFRESH_S = 10.0


@runtime_checkable
class StatefulPortsLine(Protocol):
    """A line whose ports' state outlives the process driving it (lines/modem)."""

    @property
    def driven_here(self) -> bool: ...

    def keep_port_state(self, save: Callable[[str, PortInfo, int], Awaitable[None]]) -> None: ...

    def show_stored(self, ports: Sequence[PortInfo]) -> None: ...


class PortControls(Protocol):
    """Where port actions and USSD run: on this process's lines, or in the process that
    drives them. The caller has checked the line's capabilities and the port's index."""

    async def control_port(self, line: str, port: int, action: PortAction) -> bool: ...

    async def ussd(self, line: str, port: int, text: str | None) -> UssdResult:
        """Send ``text`` on the port; None cancels the port's USSD session."""
        ...


class LocalPorts:
    """Port actions on this process's line objects (``run``, ``worker``, the worker child)."""

    def __init__(self, lines: Mapping[str, Line]) -> None:
        self._lines = lines

    async def control_port(self, line: str, port: int, action: PortAction) -> bool:
        target = self._lines[line]
        assert isinstance(target, PortControlLine), line
        return await target.control_port(port, action)

    async def ussd(self, line: str, port: int, text: str | None) -> UssdResult:
        target = self._lines[line]
        assert isinstance(target, UssdLine), line
        if text is None:
            return await target.cancel_ussd(port)
        return await target.send_ussd(port, text)


@dataclass(frozen=True, slots=True)
class PortView:
    """A port as this process knows it: live, or as stored ``age_ms`` ago (None: live)."""

    line: str
    port: PortInfo
    age_ms: int | None


class LineService:
    def __init__(self, *, store: Store, clock: Clock, publish: Publish) -> None:
        self._db = store.db
        self._clock = clock
        self._publish = publish
        self._controls: PortControls | None = None

    # ---- ownership of lines only one worker may drive (a modem port, an SMPP bind) --
    async def claim(self, *, line: str, owner: str, now_ms: int, until_ms: int) -> bool:
        """Take or renew the lease on ``line``; False while another live owner holds it."""
        job = functools.partial(
            owners.claim, line=line, owner=owner, now_ms=now_ms, until_ms=until_ms
        )
        return await self._db.write(job)

    async def release(self, *, line: str, owner: str) -> None:
        await self._db.write(functools.partial(owners.release, line=line, owner=owner))

    # ---- what the lines report -------------------------------------------------------
    async def port_changed(self, *, line: str, port: int, up: bool) -> None:
        change = PortChanged(line, port, up, self._clock.now_ms())

        async def job(conn: AsyncConnection) -> None:
            await self._publish(conn, [change])

        await self._db.write(job)

    async def ussd_replied(
        self, conn: AsyncConnection, *, line: str, port: int, text: str, now_ms: int
    ) -> None:
        """Record a USSD answer inside the caller's unit of work (which keeps the reply)."""
        await self._publish(conn, [UssdReplied(line, port, text, now_ms)])

    # ---- port actions and USSD, where the lines run ------------------------------------
    def control_ports_with(self, controls: PortControls) -> None:
        """Run port actions and USSD through ``controls`` (wire() sets this process's own)."""
        self._controls = controls

    async def control_port(self, line: str, port: int, action: PortAction) -> bool:
        """Lock, unlock, reset or power a port; False when the port refused. Raises
        :class:`~simgate.errors.Unavailable` when the process driving the lines cannot
        answer (``run --worker-process`` with its child down or restarting)."""
        assert self._controls is not None, "wire() first"
        return await self._controls.control_port(line, port, action)

    async def ussd(self, line: str, port: int, text: str | None) -> UssdResult:
        """Send ``text`` as USSD on the port (None: cancel its session); Unavailable as
        :meth:`control_port`."""
        assert self._controls is not None, "wire() first"
        return await self._controls.ussd(line, port, text)

    # ---- port state across processes (issue 16) --------------------------------------
    def wire(self, lines: Mapping[str, Line]) -> None:
        """Lines with stateful ports keep their state here while this process drives them;
        port actions run on these lines until :meth:`control_ports_with` says otherwise."""
        self._controls = LocalPorts(lines)
        for line in lines.values():
            if isinstance(line, StatefulPortsLine):
                line.keep_port_state(self.save_port)

    async def save_port(self, line: str, port: PortInfo, blocked_until_ms: int) -> None:
        row = port_state.StoredPort(
            line=line,
            port=port.index,
            reg=port.reg or ("REGISTER_OK" if port.registered else "UNREGISTER"),
            signal=port.signal,
            operator=port.operator,
            imsi=port.imsi,
            iccid=port.iccid,
            imei=port.imei,
            number=port.number,
            locked=port.locked,
            blocked_until_ms=blocked_until_ms,
            updated_ms=self._clock.now_ms(),
        )
        await self._db.write(functools.partial(port_state.save, port=row))

    async def stored_ports(self, line: str) -> list[tuple[PortInfo, int]]:
        """The ports of ``line`` as last kept, each with when it was kept (ms)."""
        async with self._db.read() as conn:
            rows = await port_state.load(conn, line=line)
        now = self._clock.now_ms()
        return [(_info(r, now_ms=now), r.updated_ms) for r in rows]

    async def refresh_stored(self, lines: Mapping[str, Line]) -> None:
        """Show the stored state on the lines this process does not drive."""
        for name, line in lines.items():
            if isinstance(line, StatefulPortsLine) and not line.driven_here:
                line.show_stored([info for info, _ in await self.stored_ports(name)])

    async def port_views(self, lines: Mapping[str, Line]) -> list[PortView]:
        """Every port: the live state where this process drives the line, the stored one
        (with its age) otherwise; a port never stored shows as the line has it."""
        now = self._clock.now_ms()
        out: list[PortView] = []
        for name, line in lines.items():
            stored: dict[int, tuple[PortInfo, int]] = {}
            if isinstance(line, StatefulPortsLine) and not line.driven_here:
                stored = {info.index: (info, at) for info, at in await self.stored_ports(name)}
            for p in line.ports():
                kept = stored.get(p.index)
                out.append(
                    PortView(name, p, None)
                    if kept is None
                    else PortView(name, kept[0], max(0, now - kept[1]))
                )
        return out

    async def keep_refreshing(self, lines: Mapping[str, Line]) -> None:
        """Run :meth:`refresh_stored` every ``STORED_REFRESH_S`` (a task of the runtime);
        returns at once when no line has stateful ports."""
        if not any(isinstance(line, StatefulPortsLine) for line in lines.values()):
            return
        while True:
            try:
                await self.refresh_stored(lines)
            except Exception as exc:  # the database away: the next round
                log.warning("stored port state not read: %s", exc)
            await self._clock.sleep(STORED_REFRESH_S)


def _info(r: port_state.StoredPort, *, now_ms: int) -> PortInfo:
    return PortInfo(
        index=r.port,
        name=f"gsm-1.{r.port + 1}",
        imsi=r.imsi,
        iccid=r.iccid,
        number=r.number,
        signal=r.signal,
        registered=r.reg == "REGISTER_OK",
        operator=r.operator,
        locked=r.locked,
        imei=r.imei,
        reg=r.reg,
        blocked=now_ms < r.blocked_until_ms,
    )
