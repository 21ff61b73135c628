"""Two workers and two API processes on one PostgreSQL database (design: process roles).

20 000 messages are queued through the service layer while two ``simgate worker`` processes
drive one shared, non-exclusive sim line; the queue is claimed with ``FOR UPDATE SKIP
LOCKED`` leases, so every message must reach the line exactly once (the journal is opened
O_APPEND by both, one ``write`` per line, so lines never interleave) and both workers must
have taken leases. The two ``simgate serve`` processes answer /healthz and /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from simgate.domain.messages import State
from simgate.services.container import Services
from simgate.settings import load_settings
from simgate.store.tables import messages
from simgate.testing.procs import SimgateProcess, free_port, write_config
from tests.conftest import PG_ADMIN_URL, _truncate_pg, need_peer
from tests.process.support import counts, enqueue, journal_submits, make_account, open_services

pytestmark = [pytest.mark.slow, pytest.mark.pg]

TOTAL = 20_000
BATCH = 1_000


async def _watch_owners(sv: Services, seen: set[str], stop: asyncio.Event) -> None:
    """Which workers hold leases, sampled while the run goes on."""
    while not stop.is_set():
        async with sv.store.db.read() as conn:
            rows = await conn.execute(
                select(messages.c.lease_owner)
                .where(messages.c.state == int(State.SUBMITTING))
                .distinct()
            )
            seen.update(r[0] for r in rows if r[0])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.01)


def _queue_depth(metrics_text: str) -> float:
    match = re.search(r"^simgate_queue_depth\S* (\S+)$", metrics_text, re.MULTILINE)
    assert match, metrics_text[:500]
    return float(match.group(1))


async def test_two_workers_two_apis_submit_each_message_exactly_once(
    tmp_path: Path, pg_url: str | None
) -> None:
    need_peer("postgresql", pg_url is not None, PG_ADMIN_URL)
    assert pg_url is not None
    await _truncate_pg(pg_url)
    journal = tmp_path / "sim.journal"
    config = write_config(
        tmp_path / "simgate.toml",
        {
            "data_dir": str(tmp_path / "data"),
            "database_url": pg_url,
            "master_key": "scale-test-master-key-0123456789",
            "log_level": "warning",
            "demo": {"create": False},
            # Small leases so that neither worker can take the whole queue in one go.
            "worker": {"batch_size": 200, "idle_poll_seconds": 0.02},
            "lines": {"sim": {"driver": "sim", "ports": 16, "journal": str(journal)}},
        },
    )
    rt = await open_services(load_settings(config))
    assert rt.services is not None
    sv = rt.services
    procs = [
        SimgateProcess(["worker"], workdir=tmp_path, config=config, name="worker-a"),
        SimgateProcess(["worker"], workdir=tmp_path, config=config, name="worker-b"),
        SimgateProcess(["serve"], workdir=tmp_path, config=config, port=free_port(), name="api-a"),
        SimgateProcess(["serve"], workdir=tmp_path, config=config, port=free_port(), name="api-b"),
    ]
    owners: set[str] = set()
    stop = asyncio.Event()
    try:
        for p in procs:
            p.start()
        for p in procs[:2]:
            await asyncio.to_thread(p.wait_output, "simgate worker running", 60.0)
        for p in procs[2:]:
            await asyncio.to_thread(p.wait_healthy, 60.0)
        watcher = asyncio.create_task(_watch_owners(sv, owners, stop))
        account = await make_account(sv)
        ids = await enqueue(sv, account, TOTAL, batch=BATCH)
        deadline = time.monotonic() + 90
        while (await counts(sv)).get(State.DELIVERED, 0) < TOTAL:
            assert all(p.poll() is None for p in procs), [p.stderr()[-1000:] for p in procs]
            assert time.monotonic() < deadline, await counts(sv)
            await asyncio.sleep(0.2)
        stop.set()
        await watcher
        async with httpx.AsyncClient(timeout=5) as client:
            for p in procs[2:]:
                assert (await client.get(p.url + "/healthz")).json() == {"status": "ok"}
                body = (await client.get(p.url + "/metrics")).text
                assert _queue_depth(body) == 0
        for p in procs:
            p.stop()
        final = await counts(sv)
    finally:
        stop.set()
        for p in procs:
            p.kill()
        await rt.close()

    assert len(set(ids)) == TOTAL
    assert final == {State.DELIVERED: TOTAL}
    submitted = journal_submits(journal)
    assert set(submitted) == set(ids)
    assert set(submitted.values()) == {1}, "a message was submitted more than once"
    assert len(owners) == 2, f"only these workers took leases: {owners}"
