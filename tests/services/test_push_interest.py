"""Publishing costs nothing when nobody will be pushed (issue 15), and skips nothing owed.

The runtime's event bus and push outbox on the real store (both backends): a batch of
changes of messages whose accounts and apps have no push URL reads no record at all; with
some configured, only theirs are read and pushed; a URL set (in this process or another one
on the same database) takes effect within the bound of services/push_interest.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.domain.accounts import Account, AppKind
from simgate.domain.events import DomainEvent, MessageChange, MessageChanged
from simgate.domain.messages import Event, State
from simgate.runtime import Runtime
from simgate.services.container import Services
from simgate.services.events import Notes, reads_messages_of
from simgate.services.push_interest import POLL_MS
from simgate.store import Store
from simgate.store.push_tables import pushes
from simgate.store.tables import messages
from simgate.testing.clock import FakeClock
from tests.conftest import make_settings, opened
from tests.store import util
from tests.support.bus import publish_counting

OPENVOX_PUSH = {"results_enable": 1, "reports_enable": 1, "url_host": "127.0.0.1", "url_port": "9"}


async def _openvox(runtime: Runtime, acc: Account, n: int = 1) -> list[int]:
    return await util.queue(runtime, acc, n, dialect="openvox")


def _sent(ids: Sequence[int], at_ms: int) -> list[MessageChange]:
    return [MessageChange(i, State.SENT, Event.SUBMIT_OK, at_ms) for i in ids]


async def _pushes(store: Store) -> list[tuple[str, str]]:
    async with store.db.read() as conn:
        rows = await conn.execute(select(pushes.c.kind, pushes.c.order_key).order_by(pushes.c.id))
        return [(kind, key) for kind, key in rows]


@pytest.fixture
def built(runtime: Runtime) -> list[int]:
    """The messages whose events the bus built (for the subscribers), batch after batch: a
    subscriber that reads what the others read, no more."""
    seen: list[int] = []

    @reads_messages_of()
    async def recorder(conn: AsyncConnection, events: Sequence[DomainEvent], notes: Notes) -> None:
        seen.extend(e.message_id for e in events if isinstance(e, MessageChanged))

    assert runtime.events is not None
    runtime.events.subscribe(recorder)
    return seen


def _doc_reads(statements: Sequence[str]) -> list[str]:
    return [s for s in statements if "FROM kv" in s]


async def test_no_push_configured_builds_no_record(
    runtime: Runtime, services: Services, built: list[int]
) -> None:
    acc = await util.account(services)
    ids = await _openvox(runtime, acc, 3)
    await publish_counting(runtime, _sent(ids[:1], runtime.clock.now_ms()))  # reads the settings
    statements = await publish_counting(runtime, _sent(ids[1:], runtime.clock.now_ms()))
    assert built == []
    # Neither the record nor the account's push settings, nor (no SMPP user either: the
    # SMPP outbox's interest, services/smpp_interest.py) the SMPP messages among them.
    assert _doc_reads(statements) == []
    assert statements == []
    assert await _pushes(runtime.store) == []


async def test_only_messages_of_pushed_accounts_are_read_and_pushed(
    runtime: Runtime, services: Services, built: list[int]
) -> None:
    pushed, silent = await util.account(services), await util.account(services, "other")
    await services.openvox.set_push_config(pushed.id, OPENVOX_PUSH)
    mine, theirs = await _openvox(runtime, pushed, 2), await _openvox(runtime, silent, 2)
    await publish_counting(runtime, _sent([*mine, *theirs], runtime.clock.now_ms()))
    assert sorted(built) == sorted(mine)
    assert await _pushes(runtime.store) == [("openvox.result", f"msg:{i}") for i in mine]


async def test_url_set_while_messages_are_in_flight_is_pushed_within_the_poll(
    runtime: Runtime, services: Services, clock: FakeClock
) -> None:
    acc = await util.account(services)
    ids = await _openvox(runtime, acc, 2)
    await publish_counting(runtime, _sent(ids, clock.now_ms()))  # sent: nobody to tell
    await services.openvox.set_push_config(acc.id, OPENVOX_PUSH)
    await clock.advance(POLL_MS / 1000)
    reports = [
        MessageChange(i, State.DELIVERED, Event.REPORT_DELIVERED, clock.now_ms()) for i in ids
    ]
    await publish_counting(runtime, reports)
    assert await _pushes(runtime.store) == [("openvox.report", f"msg:{i}") for i in ids]


async def test_app_report_url_set_in_this_process_is_seen_at_once(
    runtime: Runtime, services: Services, clock: FakeClock, built: list[int]
) -> None:
    acc = await util.account(services)
    app = await services.accounts.create_app(acc.id, kind=AppKind.SMS)
    (mid,) = await util.queue(runtime, acc, dialect="itnio", app_id=app.id)

    async def delivered(conn: AsyncConnection) -> None:
        await conn.execute(
            update(messages).where(messages.c.id == mid).values(state=int(State.DELIVERED))
        )

    await runtime.store.db.write(delivered)
    report = [MessageChange(mid, State.DELIVERED, Event.REPORT_DELIVERED, clock.now_ms())]
    await publish_counting(runtime, report)
    assert built == []
    await services.accounts.update_app_push(app.app_id, {"report_url": "http://127.0.0.1:9/r"})
    await publish_counting(runtime, report)  # no time passed: the account service's epoch moved
    assert await _pushes(runtime.store) == [("itnio.report", f"msg:{mid}")]


async def test_url_set_by_another_process_takes_effect_within_the_poll(
    runtime: Runtime, services: Services, clock: FakeClock, backend: str, tmp_path: Path
) -> None:
    acc = await util.account(services)
    ids = await _openvox(runtime, acc, 3)
    now = clock.now_ms()
    await publish_counting(runtime, _sent(ids[:1], now))  # the worker's view: nobody is pushed
    async with opened(make_settings(tmp_path / "cli", backend), clock=clock) as other:
        assert other.services is not None
        await other.services.openvox.set_push_config(acc.id, OPENVOX_PUSH)
    # Within the poll interval the worker may still go by what it knew (the bound) ...
    await publish_counting(runtime, _sent(ids[1:2], clock.now_ms()))
    assert await _pushes(runtime.store) == []
    # ... and from the end of it, what the other process set is pushed.
    await clock.advance(POLL_MS / 1000)
    await publish_counting(runtime, _sent(ids[2:], clock.now_ms()))
    assert await _pushes(runtime.store) == [("openvox.result", f"msg:{ids[2]}")]


async def test_a_push_url_switched_off_stops_the_reads(
    runtime: Runtime, services: Services, clock: FakeClock, built: list[int]
) -> None:
    acc = await util.account(services)
    await services.openvox.set_push_config(acc.id, OPENVOX_PUSH)
    ids = await _openvox(runtime, acc, 2)
    await publish_counting(runtime, _sent(ids[:1], clock.now_ms()))
    assert built == ids[:1]
    await services.openvox.set_push_config(acc.id, {**OPENVOX_PUSH, "url_host": ""})
    await clock.advance(POLL_MS / 1000)
    await publish_counting(runtime, _sent(ids[1:], clock.now_ms()))
    assert built == ids[:1]
    async with runtime.store.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(pushes))).scalar() == 1


async def test_openvox_config_set_in_this_process_is_seen_at_once(
    runtime: Runtime, services: Services, clock: FakeClock
) -> None:
    """set_config answered 200 and the next result is pushed: no poll to wait for in the
    process that took the change (it moves the account service's epoch)."""
    acc = await util.account(services)
    ids = await _openvox(runtime, acc, 2)
    await publish_counting(runtime, _sent(ids[:1], clock.now_ms()))  # read: nobody is pushed for
    await services.openvox.set_push_config(acc.id, OPENVOX_PUSH)
    await publish_counting(runtime, _sent(ids[1:], clock.now_ms()))  # no time passed
    assert await _pushes(runtime.store) == [("openvox.result", f"msg:{ids[1]}")]


async def test_dinstar_push_target_set_in_this_process_is_seen_at_once(
    runtime: Runtime, services: Services, clock: FakeClock
) -> None:
    acc = await util.account(services)
    ids = await util.queue(runtime, acc, 2, dialect="dinstar")
    await publish_counting(runtime, _sent(ids[:1], clock.now_ms()))  # read: no target yet
    assert await _pushes(runtime.store) == []
    await services.dinstar.set_push_target(url="http://127.0.0.1:9/gw", types=["sms_result"])
    await publish_counting(runtime, _sent(ids[1:], clock.now_ms()))  # no time passed
    kinds = [kind for kind, _ in await _pushes(runtime.store)]
    assert kinds
    assert all(kind.startswith("dinstar") for kind in kinds)
