"""A push attempt as the sender and the outbox exchange it: values only, no I/O.

The sender (push/sender.py) receives :class:`ClaimedPush` rows from its queue and hands back
one :class:`AttemptResult` per attempt; the outbox table (store/pushes.py) produces the first
and applies the second. They live here because both sides may import the domain, and neither
may import the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# What became of one attempt: "release" gives the row back untouched (the sender stopped or
# held it too long to send it safely, see push/sender.py).
Outcome = Literal["delivered", "retry", "failed", "dead", "release"]


@dataclass(frozen=True, slots=True)
class ClaimedPush:
    id: int
    uid: str  # the Standard Webhooks ``webhook-id``: stable across retries
    endpoint: str
    kind: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    signing_secret: str | None
    attempts: int
    since_ms: int
    lease_until_ms: int


@dataclass(frozen=True, slots=True)
class AttemptResult:
    push_id: int
    endpoint: str
    outcome: Outcome
    status: int | None = None
    error: str | None = None
    next_attempt_ms: int | None = None
