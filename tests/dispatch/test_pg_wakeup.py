"""Wake-ups between processes over PostgreSQL LISTEN/NOTIFY (dispatch/pg_wakeup.py, issue 15).

Two :class:`Wakeup` hubs stand for two processes on one database: what one notifies wakes the
other's loops, which idle on a FakeClock that never moves (so nothing but the NOTIFY can run
them). Bounded real waits only cover the database round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from simgate.dispatch import pg_wakeup
from simgate.dispatch.pg_wakeup import PgListener, PgNotifier, asyncpg_dsn
from simgate.lease_loop import PUSHES, QUEUE, LeaseLoop, Wakeup
from simgate.testing.clock import FakeClock
from tests.conftest import need_peer


def test_the_asyncpg_dsn_drops_the_sqlalchemy_driver_and_keeps_the_password() -> None:
    url = "postgresql+asyncpg://simgate:s3cret@db.example:5433/gateway"
    assert asyncpg_dsn(url) == "postgresql://simgate:s3cret@db.example:5433/gateway"


@pytest.mark.parametrize(
    ("relays", "elapsed_s", "spacing_s"),
    [
        (1, 60.0, pg_wakeup.NOTIFY_SPACING_S),  # the first after a quiet spell
        (3, 0.005, pg_wakeup.NOTIFY_SPACING_S),  # 600 commits/s
        (4, 0.005, pg_wakeup.NOTIFY_SPACING_BUSY_S),  # 800/s: a worker finds work anyway
        (25, 0.025, pg_wakeup.NOTIFY_SPACING_BUSY_S),  # 1,000/s, stays busy
        (5, 0.025, pg_wakeup.NOTIFY_SPACING_S),  # 200/s: back to the short spacing
    ],
)
def test_notifies_are_spaced_further_only_while_commits_come_fast(
    relays: int, elapsed_s: float, spacing_s: float
) -> None:
    assert pg_wakeup.notify_spacing(relays, elapsed_s) == spacing_s


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> str:
    url: str | None = request.getfixturevalue("pg_url")
    need_peer("postgresql", url is not None, "SIMGATE_TEST_PG_URL")
    assert url is not None
    return url


@pytest.fixture
async def engine(pg: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(pg)
    yield eng
    await eng.dispose()


class Counting:
    """A loop on a clock that never moves: it runs once at start, then only when woken."""

    def __init__(self, wakeup: Wakeup, topic: str) -> None:
        self.runs = 0
        self.loop = LeaseLoop(topic, cycle=self._cycle, clock=FakeClock(), idle_seconds=3600)
        wakeup.attach(topic, self.loop)

    async def _cycle(self) -> bool:
        self.runs += 1
        return False

    async def reaches(self, runs: int, tries: int = 300) -> None:
        for _ in range(tries):
            if self.runs >= runs:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{self.runs} runs, not {runs}")


async def settled(*loops: Counting) -> None:
    """Until no loop has run for 0.2 s: a new LISTEN wakes every loop once (what was said while
    not listening), which a test must let pass before it counts."""
    while True:
        runs = [c.runs for c in loops]
        await asyncio.sleep(0.2)
        if [c.runs for c in loops] == runs:
            return


@contextlib.asynccontextmanager
async def relayed(
    engine: AsyncEngine, pg: str, *topics: str
) -> AsyncIterator[tuple[Wakeup, PgNotifier, list[Counting]]]:
    """Two processes: one's hub (yielded) notifies through a PgNotifier on ``engine``, the
    other listens with a :class:`Counting` loop of each of ``topics`` (yielded); all stopped
    after."""
    api, worker = Wakeup(), Wakeup()
    notifier = PgNotifier(engine, api)
    notifier.start()
    listener = PgListener(asyncpg_dsn(pg), worker)
    loops = [Counting(worker, topic) for topic in topics]
    for counting in loops:
        counting.loop.start()
    await listener.start()
    try:
        yield api, notifier, loops
    finally:
        await listener.stop()
        await notifier.stop()
        for counting in loops:
            await counting.loop.stop()


@pytest.mark.pg
async def test_what_one_process_queues_wakes_the_others_loops(pg: str, engine: AsyncEngine) -> None:
    async with relayed(engine, pg, QUEUE, PUSHES) as (api, notifier, (queue_loop, push_loop)):
        await queue_loop.reaches(1)
        await settled(queue_loop, push_loop)  # the wake-everything that follows a LISTEN
        start = queue_loop.runs, push_loop.runs
        api.notify(QUEUE)
        await queue_loop.reaches(start[0] + 1)
        await asyncio.sleep(0.1)
        assert push_loop.runs == start[1]  # another topic: not woken
        assert notifier.sent == 1
        woken = queue_loop.runs
        for _ in range(100):  # a burst of commits: coalesced, not a NOTIFY each
            api.notify(QUEUE)
        await queue_loop.reaches(woken + 1)
        await asyncio.sleep(0.1)  # the sender counts after its round trip
        assert notifier.sent == 2


@pytest.mark.pg
async def test_a_notify_goes_out_while_every_pooled_connection_is_taken(pg: str) -> None:
    """The relay sends on a connection of its own: a busy pool (the group-commit writer and
    the requests' reads hold every connection) does not hold the wake-up back, and a NOTIFY
    costs no pool checkout."""
    small = create_async_engine(pg, pool_size=1, max_overflow=0, pool_timeout=30)
    try:
        async with relayed(small, pg, QUEUE) as (api, notifier, (queue_loop,)):
            await queue_loop.reaches(1)
            await settled(queue_loop)  # the wake-everything that follows a LISTEN
            before = queue_loop.runs
            async with small.connect() as held:  # the pool's only connection
                await held.execute(text("SELECT 1"))
                api.notify(QUEUE)
                await queue_loop.reaches(before + 1)
            assert notifier.sent == 1
    finally:
        await small.dispose()


@pytest.mark.pg
async def test_a_notify_in_a_transaction_wakes_only_when_it_commits(
    pg: str, engine: AsyncEngine
) -> None:
    """What the push outbox relies on (services/outbox.py): its NOTIFY rides its transaction."""
    writer, worker = Wakeup(), Wakeup()
    listener = PgListener(asyncpg_dsn(pg), worker)
    pushes = Counting(worker, PUSHES)
    pushes.loop.start()
    await listener.start()
    notify = text("SELECT pg_notify('simgate_wake', :payload)")
    try:
        await pushes.reaches(1)
        await settled(pushes)  # the wake-everything that follows a LISTEN
        before = pushes.runs
        async with engine.connect() as conn:
            await conn.execute(notify, {"payload": writer.payload(PUSHES)})
            await asyncio.sleep(0.2)
            assert pushes.runs == before  # not committed yet
            await conn.rollback()
        await asyncio.sleep(0.2)
        assert pushes.runs == before  # rolled back: never delivered
        async with engine.begin() as conn:
            await conn.execute(notify, {"payload": writer.payload(PUSHES)})
        await pushes.reaches(before + 1)
    finally:
        await listener.stop()
        await pushes.loop.stop()


@pytest.mark.pg
async def test_the_listener_reconnects_and_wakes_every_loop_once_after_a_drop(
    pg: str, engine: AsyncEngine
) -> None:
    async with relayed(engine, pg, QUEUE) as (api, _notifier, (queue_loop,)):
        await queue_loop.reaches(2)  # start, then the wake-up of the first LISTEN
        before = queue_loop.runs
        async with engine.begin() as conn:
            dropped = await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            )
            assert dropped.scalars().all() == [True]
        await queue_loop.reaches(before + 1)  # back, and told it may have missed something
        woken = queue_loop.runs
        api.notify(QUEUE)
        await queue_loop.reaches(woken + 1)


@pytest.mark.pg
async def test_start_returns_once_listening_not_at_the_connect_timeout(
    pg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listening task runs for good: start() waits for the LISTEN, not for that task (it
    once waited for both, so every PostgreSQL worker start took the whole timeout)."""
    monkeypatch.setattr(pg_wakeup, "CONNECT_TIMEOUT_S", 3600.0)
    listener = PgListener(asyncpg_dsn(pg), Wakeup())
    try:
        async with asyncio.timeout(60):  # a liveness bound: the bug waits the hour
            await listener.start()
        assert listener._task is not None
        assert not listener._task.done()
    finally:
        await listener.stop()
