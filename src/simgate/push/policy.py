"""What an attempt's answer means, and when to try again (issue #3 "Sending"). Pure."""

from __future__ import annotations

import random
from datetime import UTC
from email.utils import parsedate_to_datetime
from enum import Enum

# Any 2xx accepts. These mean "later": timeout, too early, too many requests; and all 5xx.
RETRY_STATUSES = frozenset({408, 425, 429})


class Verdict(Enum):
    ACCEPTED = "accepted"
    RETRY = "retry"
    FAILED = "failed"  # permanent: other 4xx, 3xx (redirects are not followed), 1xx


def classify(status: int) -> Verdict:
    if 200 <= status <= 299:
        return Verdict.ACCEPTED
    if status in RETRY_STATUSES or 500 <= status <= 599:
        return Verdict.RETRY
    return Verdict.FAILED


def retry_after_seconds(value: str | None, *, now_ms: int) -> float | None:
    """``Retry-After`` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, float(when.timestamp()) - now_ms / 1000)


def backoff_seconds(attempts: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": between half and all of base·2^(n-1), capped."""
    exponent: int = min(max(attempts - 1, 0), 40)
    delay = min(cap, base * float(2**exponent))
    return delay / 2 + rng.random() * delay / 2


def next_attempt_ms(
    *,
    attempts: int,
    now_ms: int,
    created_ms: int,
    retry_after: float | None,
    base: float,
    cap: float,
    retry_after_cap: float,
    give_up_after: float,
    rng: random.Random,
) -> int | None:
    """When to try again after a retryable failure; None = dead-letter now.

    Pushes are retried for at least ``give_up_after`` seconds after they were planned: the
    push is dead only when a failure happens after that horizon.
    """
    if now_ms - created_ms >= give_up_after * 1000:
        return None
    if retry_after is not None:
        delay = min(retry_after, retry_after_cap)
    else:
        delay = backoff_seconds(attempts, base=base, cap=cap, rng=rng)
    return now_ms + int(delay * 1000)
