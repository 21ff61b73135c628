"""Gateway ports 0..N-1 onto simgate's (line, port) pairs (spec §2.1: ports are 0-based).

The dialect exposes the ports of the configured lines in order: with lines ``a`` (4 ports)
and ``b`` (8 ports), gateway port 5 is port 1 of ``b``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from simgate.errors import ConfigError
from simgate.lines.base import Line, PortInfo


@dataclass(frozen=True, slots=True)
class GatewayPort:
    number: int  # the gateway's port number on the wire
    line: str
    index: int  # the line's own port index


class PortMap:
    def __init__(self, lines: Mapping[str, Line], names: Sequence[str]) -> None:
        self._lines = lines
        chosen = list(names) or list(lines)
        unknown = [n for n in chosen if n not in lines]
        if unknown:
            raise ConfigError(f"dinstar.lines names unknown line(s): {', '.join(unknown)}")
        self.ports: list[GatewayPort] = []
        for name in chosen:
            for p in lines[name].ports():
                self.ports.append(GatewayPort(len(self.ports), name, p.index))
        self._back = {(g.line, g.index): g.number for g in self.ports}
        self.line_names: tuple[str, ...] = tuple(chosen)

    def __len__(self) -> int:
        return len(self.ports)

    def get(self, number: int) -> GatewayPort | None:
        return self.ports[number] if 0 <= number < len(self.ports) else None

    def number_of(self, line: str | None, index: int | None) -> int | None:
        if line is None or index is None:
            return None
        return self._back.get((line, index))

    def info(self, gp: GatewayPort) -> PortInfo | None:
        """The port as the line sees it now (SIM, registration); None if it vanished."""
        for p in self._lines[gp.line].ports():
            if p.index == gp.index:
                return p
        return None

    def imsi(self, line: str | None, index: int | None) -> str:
        number = self.number_of(line, index)
        gp = self.get(number) if number is not None else None
        info = self.info(gp) if gp is not None else None
        return info.imsi if info is not None else ""

    def line(self, name: str) -> Line:
        return self._lines[name]
