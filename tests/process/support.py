"""Shared by the process tests: their config and database, a service layer in the test
process, and journal reading."""

from __future__ import annotations

import collections
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from simgate.domain.accounts import Account, GatewayRole
from simgate.domain.messages import State
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.services.sending import Recipient, SendRequest
from simgate.settings import Settings, load_settings
from simgate.store import Store
from simgate.testing.procs import write_config
from tests.conftest import PG_ADMIN_URL, need_peer
from tests.support.pg import truncate_pg


async def empty_pg(pg_url: str | None) -> str:
    """The session's PostgreSQL database, emptied for this test (skipped without one, failed in
    CI: tests/conftest.py need_peer)."""
    need_peer("postgresql", pg_url is not None, PG_ADMIN_URL)
    assert pg_url is not None
    await truncate_pg(pg_url)
    return pg_url


async def database_url(backend: str, pg_url: str | None) -> str | None:
    """For a test parametrised over ``backend`` ("sqlite" or "pg"): None (SQLite in data_dir)
    or the emptied PostgreSQL database."""
    return await empty_pg(pg_url) if backend == "pg" else None


def simgate_config(
    tmp_path: Path, port: int | None, url: str | None = None, **sections: Any
) -> Path:
    """``tmp_path/simgate.toml`` for a ``simgate`` subprocess: data in ``tmp_path/data`` (and
    its SQLite database unless ``url``), HTTP on ``port``, no demo account, warnings only;
    ``sections`` are the rest of the file (``worker``, ``lines``...)."""
    return write_config(
        tmp_path / "simgate.toml",
        {
            "database_url": url,
            "data_dir": str(tmp_path / "data"),
            "master_key": "process-test-master-key-0123456789",
            "log_level": "warning",
            "demo": {"create": False},
            "http": {"port": port},
            **sections,
        },
    )


def sim_line(tmp_path: Path, **options: Any) -> dict[str, Any]:
    """The ``lines`` section of one sim line ``sim`` journaling to ``tmp_path/sim.journal``."""
    return {"sim": {"driver": "sim", "journal": str(tmp_path / "sim.journal"), **options}}


async def add_user(
    config: Path, username: str, password: str, role: GatewayRole = GatewayRole.ACCOUNT
) -> None:
    """A gateway user ``username`` of a new account (its balance more than any test spends) in
    ``config``'s database, before the subprocesses start."""
    rt = await open_services(load_settings(config))
    assert rt.services is not None
    try:
        account = await make_account(rt.services)
        await rt.services.accounts.create_user(
            account.id, username=username, password=password, role=role
        )
    finally:
        await rt.close()


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


def metric_total(text: str, family: str) -> float:
    """The sum of the ``_total`` samples of counter ``family`` in a /metrics ``text`` (every
    label, every process behind it)."""
    total = 0.0
    for found in text_string_to_metric_families(text):
        if found.name == family:
            total += sum(s.value for s in found.samples if s.name.endswith("_total"))
    return total


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
