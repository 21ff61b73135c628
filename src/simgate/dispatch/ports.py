"""Choosing a port for a message: allowed by the request, usable, and under its rate limit.

A SIM card sending faster than its operator tolerates gets barred, so each port has a budget
of messages per minute (a token bucket refilled continuously). Ports are tried round-robin so
load spreads across SIMs.
"""

from __future__ import annotations

from collections.abc import Sequence

from simgate.lines.base import PortInfo


class TokenBucket:
    def __init__(self, per_minute: int, now_ms: int) -> None:
        self.capacity = float(per_minute)
        self.tokens = float(per_minute)
        self.rate_per_ms = per_minute / 60_000
        self.stamp = now_ms

    def _refill(self, now_ms: int) -> None:
        if now_ms > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now_ms - self.stamp) * self.rate_per_ms)
            self.stamp = now_ms

    def take(self, now_ms: int) -> bool:
        self._refill(now_ms)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait_ms(self, now_ms: int) -> int:
        self._refill(now_ms)
        missing = 1.0 - self.tokens
        return 0 if missing <= 0 else int(missing / self.rate_per_ms) + 1


def parse_hint(hint: str | None) -> frozenset[int] | None:
    """``"2,3"`` → {2, 3}; None or empty = any port."""
    if not hint:
        return None
    return frozenset(int(p) for p in hint.split(",") if p.strip().isdigit())


class PortPicker:
    """Round-robin over a line's usable ports, honouring hints and per-port rate limits."""

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._buckets: dict[int, TokenBucket] = {}
        self._cursor = 0

    def pick(
        self, ports: Sequence[PortInfo], hint: frozenset[int] | None, now_ms: int
    ) -> int | None:
        n = len(ports)
        for step in range(n):
            port = ports[(self._cursor + step) % n]
            if not port.usable or (hint is not None and port.index not in hint):
                continue
            if self._per_minute and not self._bucket(port.index, now_ms).take(now_ms):
                continue
            self._cursor = (port.index + 1) % n
            return port.index
        return None

    def wait_ms(
        self, ports: Sequence[PortInfo], hint: frozenset[int] | None, now_ms: int
    ) -> int | None:
        """How long until some allowed port could take a message; None if none ever can."""
        waits = [
            self._bucket(p.index, now_ms).wait_ms(now_ms) if self._per_minute else 0
            for p in ports
            if p.usable and (hint is None or p.index in hint)
        ]
        return min(waits) if waits else None

    def _bucket(self, index: int, now_ms: int) -> TokenBucket:
        bucket = self._buckets.get(index)
        if bucket is None:
            bucket = self._buckets[index] = TokenBucket(self._per_minute, now_ms)
        return bucket
