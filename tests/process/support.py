"""Shared by the process tests: a service layer in the test process, and journal reading."""

from __future__ import annotations

import collections
from collections.abc import Iterable
from pathlib import Path

from simgate.domain.accounts import Account
from simgate.domain.messages import State
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.services.sending import Recipient, SendRequest
from simgate.settings import Settings
from simgate.store import Store


async def open_services(settings: Settings, *, migrate: bool = True) -> Runtime:
    """A runtime in the test process on the same database as the subprocesses (no worker)."""
    rt = Runtime(settings, role="admin")
    await rt.open(migrate=migrate)
    return rt


async def make_account(services: Services, balance: str = "1000000") -> Account:
    return await services.accounts.create_account(name="load", balance=balance)


async def enqueue(
    services: Services, account: Account, count: int, *, batch: int = 1000, start: int = 0
) -> list[int]:
    """``count`` messages through SendService.send, ``batch`` recipients per request."""
    ids: list[int] = []
    for first in range(start, start + count, batch):
        n = min(batch, start + count - first)
        recipients = [Recipient(f"86138{i % 100_000_000:08d}") for i in range(first, first + n)]
        outcome = await services.sending.send(
            SendRequest(account=account, dialect="test", text="load test", recipients=recipients)
        )
        assert not outcome.invalid
        ids.extend(a.message_id for a in outcome.accepted)
    return ids


async def states(store: Store, ids: Iterable[int]) -> dict[int, State]:
    async with store.db.read() as conn:
        rows = await store.messages.get(conn, list(ids))
    return {r.id: r.state for r in rows}


async def counts(store: Store) -> dict[State, int]:
    async with store.db.read() as conn:
        return await store.messages.counts_by_state(conn)


def journal_submits(path: Path, *, live: bool = False) -> collections.Counter[int]:
    """How often each message id was handed to the sim line (``S <id> ...`` lines).

    ``live``: the line may be writing while we read. The sim line appends a batch in one
    ``os.write``, and a reader can see that write part-done (the page cache is filled page by
    page), so the text after the last newline is a line still being written, not a torn one:
    left out. Read after the writer is gone (``live=False``) every line must be whole."""
    seen: collections.Counter[int] = collections.Counter()
    if not path.exists():
        return seen
    text = path.read_text(encoding="ascii")
    if live:
        text = text[: text.rfind("\n") + 1]
    for line in text.splitlines():
        fields = line.split()
        assert fields, "empty journal line"
        assert fields[0] in ("S", "A"), f"torn journal line: {line!r}"
        if fields[0] == "S":
            assert len(fields) == 6, f"torn journal line: {line!r}"
            seen[int(fields[1])] += 1
        else:
            assert len(fields) == 2, f"torn journal line: {line!r}"
    return seen
