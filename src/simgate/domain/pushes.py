"""A push attempt as the sender and the outbox exchange it: values only, no I/O.

The sender (push/sender.py) receives :class:`ClaimedPush` rows from its queue and hands back
one :class:`AttemptResult` per attempt; the outbox table (store/pushes.py) produces the first
and applies the second. They live here because both sides may import the domain, and neither
may import the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


# Whose messages a push may be owed for (push/base.py's formats decide it, the store reads by it:
# store/event_reads.py), here because both sides may import the domain.
@dataclass(frozen=True, slots=True)
class Owners:
    """Whose messages of one dialect a format may push for: every message, or those of
    ``accounts`` (account ids) or of ``apps`` (app primary keys). Empty: none at all."""

    every: bool = False
    accounts: frozenset[int] = frozenset()
    apps: frozenset[int] = frozenset()

    def __or__(self, other: Owners) -> Owners:
        if self.every or other.every:
            return EVERY
        return Owners(False, self.accounts | other.accounts, self.apps | other.apps)

    def __bool__(self) -> bool:
        return self.every or bool(self.accounts) or bool(self.apps)


EVERY = Owners(every=True)

# By message dialect: whose messages some push may be owed for; a dialect left out owes none.
Interest = Mapping[str, Owners]


def combine(parts: Iterable[Interest]) -> dict[str, Owners]:
    """The union of ``parts``, by dialect (a dialect whose owners are empty is left out)."""
    out: dict[str, Owners] = {}
    for part in parts:
        for dialect, owners in part.items():
            if owners:
                out[dialect] = out[dialect] | owners if dialect in out else owners
    return out
