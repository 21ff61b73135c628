"""Each modem port's last known state (issue 16), kept so a process that does not drive the
line (``simgate lines list``, a ``serve``-only API process, the console) can show it.

One row per (line, port), overwritten by the process that drives the line whenever the
state changes (lines/modem/line.py throttles signal-only changes). ``updated_ms`` tells the
reader how old the picture is.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, Boolean, Column, Integer, String, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.store.tables import metadata

__all__ = ["StoredPort", "load", "port_states", "save"]

port_states = Table(
    "modem_port_state",
    metadata,
    Column("line", String(64), primary_key=True),
    Column("port", Integer, primary_key=True),
    Column("reg", String(24), nullable=False),  # Dinstar names (spec §2.8)
    Column("signal", Integer, nullable=False),  # 0..31 (+CSQ)
    Column("operator", String(64), nullable=False),
    Column("imsi", String(20), nullable=False),
    Column("iccid", String(24), nullable=False),
    Column("imei", String(20), nullable=False),
    Column("number", String(32), nullable=False),
    Column("locked", Boolean, nullable=False),
    Column("blocked_until_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)


@dataclass(frozen=True, slots=True)
class StoredPort:
    line: str
    port: int
    reg: str
    signal: int
    operator: str
    imsi: str
    iccid: str
    imei: str
    number: str
    locked: bool
    blocked_until_ms: int
    updated_ms: int


def _values(p: StoredPort) -> dict[str, object]:
    return {
        "reg": p.reg,
        "signal": p.signal,
        "operator": p.operator[:64],
        "imsi": p.imsi[:20],
        "iccid": p.iccid[:24],
        "imei": p.imei[:20],
        "number": p.number[:32],
        "locked": p.locked,
        "blocked_until_ms": p.blocked_until_ms,
        "updated_ms": p.updated_ms,
    }


async def save(conn: AsyncConnection, port: StoredPort) -> None:
    """Overwrite the row of ``port`` (one process drives a line: no two writers race)."""
    result = await conn.execute(
        update(port_states)
        .where(port_states.c.line == port.line, port_states.c.port == port.port)
        .values(**_values(port))
    )
    if not result.rowcount:
        await conn.execute(
            insert(port_states).values(line=port.line, port=port.port, **_values(port))
        )


async def load(conn: AsyncConnection, *, line: str | None = None) -> list[StoredPort]:
    query = select(port_states).order_by(port_states.c.line, port_states.c.port)
    if line is not None:
        query = query.where(port_states.c.line == line)
    return [
        StoredPort(
            line=r.line,
            port=r.port,
            reg=r.reg,
            signal=r.signal,
            operator=r.operator,
            imsi=r.imsi,
            iccid=r.iccid,
            imei=r.imei,
            number=r.number,
            locked=bool(r.locked),
            blocked_until_ms=r.blocked_until_ms,
            updated_ms=r.updated_ms,
        )
        for r in await conn.execute(query)
    ]
