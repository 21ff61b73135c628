"""Which voice line takes the next call, and when it may dial (spec §1.11-§1.12 pacing).

Carriers and SIP trunks cap both the calls placed per second and the calls up at once, per
line (``calls_per_second``, ``max_concurrent`` of each :class:`VoiceLine`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from simgate.lines.voice import VoiceLine


@dataclass
class _LineState:
    line: VoiceLine
    active: int = 0
    next_slot_ms: int = 0  # calls-per-second pacing: the earliest start of the next dial


@dataclass(frozen=True, slots=True)
class Slot:
    line: str
    start_ms: int  # dial no earlier than this


class Pacer:
    def __init__(self, lines: Mapping[str, VoiceLine]) -> None:
        self._lines = {name: _LineState(line) for name, line in lines.items()}

    def free(self) -> int:
        """Calls the lines can take right now, all together."""
        return sum(max(0, s.line.max_concurrent - s.active) for s in self._lines.values())

    def take(
        self, *, previous: str | None, now_ms: int, among: Collection[str] | None = None
    ) -> Slot | None:
        """A line with room and the time its next dial is due, or None when all are full.
        A redial prefers a line other than the last attempt's (``previous``). ``among``: only
        these lines (the callee's voice route), in the order of the lines."""
        free = [
            n
            for n, s in self._lines.items()
            if s.active < s.line.max_concurrent and (among is None or n in among)
        ]
        if not free:
            return None
        others = [n for n in free if n != previous]
        name = (others or free)[0]
        state = self._lines[name]
        state.active += 1
        start_ms = max(now_ms, state.next_slot_ms)
        state.next_slot_ms = start_ms + int(1000 / state.line.calls_per_second)
        return Slot(name, start_ms)

    def line(self, name: str) -> VoiceLine:
        return self._lines[name].line

    def release(self, name: str) -> None:
        """The call on ``name`` is over: room for another."""
        self._lines[name].active -= 1
