"""A token bucket per SMPP account, shared by all its binds (issue 18 "Throttling").

Not Jasmin's "minimum gap between two submits" rule, which refuses a burst even when the
account is far below its rate: the bucket holds one second of tokens, so a burst up to the
rate passes and only what exceeds it is refused (ESME_RTHROTTLED, v3.4 §5.1.3).
"""

from __future__ import annotations


class TokenBucket:
    def __init__(self, *, rate: float, now: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.capacity = burst if burst is not None else max(rate, 1.0)
        self._tokens = self.capacity
        self._at = now

    def take(self, now: float) -> bool:
        """One token if there is one (True), else False; time refills at ``rate``/s."""
        elapsed = max(0.0, now - self._at)
        self._at = max(self._at, now)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
