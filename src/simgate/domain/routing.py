"""Routing by destination prefix: the longest matching prefix wins."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar


class RouteLike(Protocol):
    @property
    def prefix(self) -> str: ...

    @property
    def lines(self) -> tuple[str, ...]: ...


R = TypeVar("R", bound=RouteLike)


def route_for(routes: Sequence[R], number: str) -> R | None:
    best: R | None = None
    for r in routes:
        if number.startswith(r.prefix) and (best is None or len(r.prefix) > len(best.prefix)):
            best = r
    return best
