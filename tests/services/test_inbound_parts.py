"""Incoming SMS in parts, reassembled from durable rows (services/inbound.py, on both
backends): whole once every part came, in any order and across a restart; a part sent
again is the same part; what stopped coming is stored as it is after the timeout; a flood
of messages that never end is refused, not dropped."""

from __future__ import annotations

import asyncio

import pytest

from simgate.codecs.gsm7 import encode_septets
from simgate.codecs.ucs2 import encode_ucs2
from simgate.domain.accounts import Account
from simgate.domain.records import InboundRecord
from simgate.errors import Busy
from simgate.lines.base import IncomingPart
from simgate.runtime import Runtime
from simgate.secretbox import SecretBox
from simgate.services.container import Services
from simgate.services.inbound import InboundService
from simgate.store import Database, Store
from simgate.testing.clock import FakeClock

TIMEOUT_MS = 60_000


@pytest.fixture
async def account(services: Services) -> Account:
    return await services.accounts.create_account(name="acme")


def part(
    seq: int,
    total: int,
    text: str,
    clock: FakeClock,
    *,
    ref: int = 7,
    sender: str = "4477",
    ucs2: bool = False,
) -> IncomingPart:
    return IncomingPart(
        port=0, sender=sender, recipient="12345", ref=ref, total=total, seq=seq,
        data_coding=8 if ucs2 else 0, data=encode_ucs2(text) if ucs2 else encode_septets(text),
        received_ms=clock.now_ms(), smsc="smsc:2775",
    )  # fmt: skip


async def stored(store: Store) -> list[InboundRecord]:
    async with store.db.read() as conn:
        return await store.inbound.page(conn, limit=1000)


async def waiting(store: Store, line: str = "smsc") -> int:
    async with store.db.read() as conn:
        return await store.reassembly.pending(conn, line)


async def test_parts_in_any_order_make_one_whole_sms_with_the_last(
    services: Services, store: Store, clock: FakeClock, account: Account
) -> None:
    words = ["Hello ", "there, ", "{friend}"]
    for seq in (3, 1):
        assert (
            await services.inbound.receive_parts("smsc", [part(seq, 3, words[seq - 1], clock)])
            == []
        )
        await clock.advance(1)
    assert await stored(store) == []
    assert await waiting(store) == 1
    (mid,) = await services.inbound.receive_parts("smsc", [part(2, 3, words[1], clock)])
    (row,) = await stored(store)
    assert (row.id, row.account_id, row.text, row.parts) == (mid, account.id, "".join(words), 3)
    assert (row.sender, row.recipient, row.smsc, row.received_ms) == (
        "4477", "12345", "smsc:2775", clock.now_ms()
    )  # fmt: skip
    assert await waiting(store) == 0
    # Announced in the storing commit: Dinstar's incoming_sms_id numbering subscribes.
    page = await services.dinstar.incoming(
        account_id=account.id, after_seq=0, read=None, mark_read=False, ports=None, limit=10
    )
    assert [n.record.id for n in page.sms] == [mid]


async def test_a_part_from_before_a_restart_joins_the_rest(
    runtime: Runtime, store: Store, clock: FakeClock, account: Account
) -> None:
    halves = ["Здравствуйте, ", "это ответ"]
    assert runtime.services is not None
    await runtime.services.inbound.receive_parts("smsc", [part(1, 2, halves[0], clock, ucs2=True)])
    # Another process: a service with nothing in memory, over the same database.
    later = InboundService(store=store, clock=clock, publish=runtime.changes.publish)
    (mid,) = await later.receive_parts("smsc", [part(2, 2, halves[1], clock, ucs2=True)])
    (row,) = await stored(store)
    assert (row.id, row.text, row.parts) == (mid, "".join(halves), 2)


async def test_a_part_sent_again_is_the_same_part(
    services: Services, store: Store, clock: FakeClock, account: Account
) -> None:
    inbound = services.inbound
    await inbound.receive_parts("smsc", [part(1, 2, "one ", clock)])
    await inbound.receive_parts("smsc", [part(1, 2, "ONE ", clock)])  # again: first copy stays
    await inbound.receive_parts("smsc", [part(2, 2, "two", clock)])
    # The SMSC never heard our answer to the last part and sends it again.
    assert await inbound.receive_parts("smsc", [part(2, 2, "two", clock)]) == []
    assert [r.text for r in await stored(store)] == ["one two"]
    assert await waiting(store) == 0


async def test_the_same_reference_with_other_text_is_a_new_message(
    services: Services, store: Store, clock: FakeClock, account: Account
) -> None:
    inbound = services.inbound
    for text in (["a", "b"], ["c", "d"]):  # the sender's 8-bit counter came round
        for seq in (1, 2):
            await inbound.receive_parts("smsc", [part(seq, 2, text[seq - 1], clock)])
    assert sorted(r.text for r in await stored(store)) == ["ab", "cd"]


async def test_parts_are_told_apart_by_sender_reference_total_and_line(
    services: Services, store: Store, clock: FakeClock, account: Account
) -> None:
    inbound = services.inbound
    await inbound.receive_parts("smsc", [part(1, 2, "a", clock)])
    await inbound.receive_parts("smsc", [part(2, 2, "x", clock, sender="4478")])
    await inbound.receive_parts("smsc", [part(2, 2, "x", clock, ref=8)])
    await inbound.receive_parts("smsc", [part(2, 3, "x", clock)])
    await inbound.receive_parts("other", [part(2, 2, "x", clock)])
    assert await stored(store) == []
    assert await waiting(store) == 4


async def test_what_stopped_coming_is_stored_as_it_is_after_the_timeout(
    services: Services, store: Store, clock: FakeClock, account: Account
) -> None:
    inbound = services.inbound
    start = clock.now_ms()
    await inbound.receive_parts("smsc", [part(3, 3, "end", clock)])
    await inbound.receive_parts("smsc", [part(1, 3, "start ", clock)])
    await clock.advance(30)
    await inbound.receive_parts("smsc", [part(1, 2, "later ", clock, ref=9)])
    assert await inbound.expire_parts("smsc", started_before_ms=start) == []  # not yet
    (mid,) = await inbound.expire_parts("smsc", started_before_ms=start + 1)
    (row,) = await stored(store)
    assert (row.id, row.text, row.parts) == (mid, "start end", 2)
    assert await waiting(store) == 1  # ref 9 began later: still waiting
    # The stored one's rows stay one more timeout (a part sent again is known)...
    assert await inbound.receive_parts("smsc", [part(3, 3, "end", clock)]) == []
    assert len(await stored(store)) == 1
    async with store.db.read() as conn:
        assert await store.reassembly.stale(conn, "smsc", done_before_ms=clock.now_ms() + 1)
    # ...then go (and ref 9, begun 30 s after, is stored as it is by then).
    done_at = clock.now_ms()
    await clock.advance(TIMEOUT_MS / 1000)
    await inbound.expire_parts("smsc", started_before_ms=clock.now_ms() - TIMEOUT_MS + 1)
    async with store.db.read() as conn:
        assert not await store.reassembly.stale(conn, "smsc", done_before_ms=done_at + 1)
        assert await store.reassembly.pending(conn, "smsc") == 0
    assert sorted(r.text for r in await stored(store)) == ["later ", "start end"]
    # Nothing due and nothing to forget: nothing happens.
    assert await inbound.expire_parts("smsc", started_before_ms=clock.now_ms() - TIMEOUT_MS) == []


async def test_a_flood_of_messages_that_never_end_is_refused_not_dropped(
    runtime: Runtime, store: Store, clock: FakeClock, account: Account
) -> None:
    inbound = InboundService(
        store=store, clock=clock, publish=runtime.changes.publish, max_pending=2
    )
    for ref in (1, 2):
        await inbound.receive_parts("smsc", [part(1, 2, f"m{ref} ", clock, ref=ref)])
    with pytest.raises(Busy):
        await inbound.receive_parts("smsc", [part(1, 2, "m3 ", clock, ref=3)])
    await inbound.receive_parts("other", [part(1, 2, "x", clock, ref=3)])  # per line
    # Parts of the messages already waiting are still taken, and complete them.
    (mid,) = await inbound.receive_parts("smsc", [part(2, 2, "end", clock, ref=1)])
    (row,) = await stored(store)
    assert (row.id, row.text) == (mid, "m1 end")
    assert await inbound.receive_parts("smsc", [part(1, 2, "m3 ", clock, ref=3)]) == []
    assert await waiting(store) == 2


async def test_parts_of_one_message_on_two_workers_at_once_complete_it_once(
    backend: str, runtime: Runtime, store: Store, clock: FakeClock, account: Account
) -> None:
    """Every worker binds the line, so two parts may be stored at the same moment by two
    processes: the group row is locked while its parts are counted (PostgreSQL)."""
    assert runtime.services is not None
    here = runtime.services.inbound
    db = Database(backend)
    await db.open()
    try:
        there = InboundService(
            store=Store(db, SecretBox("test-master-key-0123456789")),
            clock=clock,
            publish=runtime.changes.publish,
        )
        for ref in range(20):
            await here.receive_parts("smsc", [part(1, 3, "a", clock, ref=ref)])
        await asyncio.gather(
            *(
                svc.receive_parts("smsc", [part(seq, 3, "bc"[seq - 2], clock, ref=ref)])
                for ref in range(20)
                for svc, seq in ((here, 2), (there, 3))
            )
        )
    finally:
        await db.close()
    rows = await stored(store)
    assert sorted(r.text for r in rows) == ["abc"] * 20
    assert await waiting(store) == 0
