"""The SMPP receipt outbox: receipts and incoming SMS as stored deliver_sm, owed once."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.codecs.smpp import DeliverSm, decode, extract_receipt
from simgate.domain.accounts import Account
from simgate.domain.events import Change, DomainEvent, InboundStored, MessageChange
from simgate.domain.messages import Event, State
from simgate.lease_loop import SMPP_OUT, Wakeup
from simgate.runtime import Runtime
from simgate.services.accounts import hash_password
from simgate.services.container import Services
from simgate.services.smpp_gateway import (
    FAILURE_ONLY_MARK,
    PER_PART_FAILURE_ONLY_MARK,
    PER_PART_MARK,
)
from simgate.services.smpp_interest import POLL_MS
from simgate.services.smpp_outbox import SmppOutbox, inbound_pdu, part_states, receipt_pdu
from simgate.services.smpp_users import BindGrant
from simgate.store import Store
from simgate.store.smpp_tables import smpp_outbox, smpp_users
from simgate.testing.clock import FakeClock
from tests.conftest import make_settings, opened
from tests.services.support import inbound_row, write_rows
from tests.store import util
from tests.support.bus import publish_counting
from tests.support.push_events import changed, inbound, message, received


def test_receipt_text_and_tlvs_follow_appendix_b() -> None:
    pdu = receipt_pdu(message(dialect="smpp", text="hello world, a long text"), "decimal")
    receipt = extract_receipt(pdu)
    assert receipt is not None
    assert (receipt.id, receipt.sub, receipt.dlvrd, receipt.stat, receipt.err) == (
        "2601010000000000001",
        1,
        1,
        "DELIVRD",
        "000",
    )
    assert receipt.text == "hello world, a long "  # the first 20 characters
    assert pdu.tlvs.receipted_message_id == "2601010000000000001"
    assert pdu.tlvs.message_state == 2
    assert (pdu.source_addr, pdu.destination_addr) == ("8613800138000", "")
    failed = receipt_pdu(
        message(dialect="smpp", state=State.FAILED, status_code=34, failed_ms=2, delivered_ms=None),
        "hex",
    )
    r = extract_receipt(failed)
    assert r is not None
    assert r.stat == "UNDELIV"
    assert r.err == "034"
    assert r.dlvrd == 0
    assert r.id == format(2601010000000000001, "x")


def test_inbound_in_gsm7_or_ucs2() -> None:
    assert inbound_pdu(inbound(text="hello")).data_coding == 0
    ucs2 = inbound_pdu(inbound(text="你好"))
    assert ucs2.data_coding == 8
    assert ucs2.short_message == "你好".encode("utf-16-be")
    long = inbound_pdu(inbound(text="ж" * 200))
    assert long.short_message == b""
    assert long.tlvs.message_payload is not None


async def test_rows_only_for_smpp_messages_in_final_states_and_smpp_accounts(
    services: Services, store: Store, clock: FakeClock
) -> None:
    account = await services.accounts.create_account(name="acme")
    assert services.smpp_users is not None
    outbox = SmppOutbox(store=store, clock=clock, id_base="decimal", keep_seconds=60)
    smpp = message(account_id=account.id, dialect="smpp")
    events: list[DomainEvent] = [
        changed(smpp, Event.REPORT_DELIVERED),
        changed(message(account_id=account.id, dialect="itnio"), Event.REPORT_DELIVERED),
        changed(smpp, Event.SUBMIT_OK, state=State.SENT),
        changed(
            message(account_id=account.id, dialect="smpp", report_requested=False),
            Event.REPORT_DELIVERED,
        ),
        received(inbound(account_id=account.id)),
    ]
    await store.db.write(lambda conn: outbox(conn, events, {}))
    assert await outbox.pending() == {account.id: 1}  # no SMPP account yet: no inbound row
    await services.smpp_users.create(account="acme", system_id="esme", password="pw")
    await store.db.write(lambda conn: outbox(conn, [events[-1]], {}))
    rows = await outbox.due(account_id=account.id, after_id=0, limit=10)
    assert [r.kind for r in rows] == ["receipt", "inbound"]
    assert isinstance(decode(rows[0].pdu), DeliverSm)
    await outbox.answered([rows[0].id])
    assert [r.kind for r in await outbox.due(account_id=account.id, after_id=0, limit=10)] == [
        "inbound"
    ]
    await clock.advance(61)
    assert await outbox.due(account_id=account.id, after_id=0, limit=10) == []  # expired
    assert await outbox.purge_expired() == 1


async def test_registered_delivery_2_owes_a_receipt_only_on_failure(
    services: Services, store: Store, clock: FakeClock
) -> None:
    account = await services.accounts.create_account(name="acme")
    outbox = SmppOutbox(store=store, clock=clock, id_base="decimal", keep_seconds=60)
    quiet = message(account_id=account.id, dialect="smpp", client_ref=FAILURE_ONLY_MARK)
    failed = dataclasses.replace(quiet, id=quiet.id + 1, state=State.FAILED, status_code=34)
    events: list[DomainEvent] = [
        changed(quiet, Event.REPORT_DELIVERED),
        changed(failed, Event.REPORT_FAILED, state=State.FAILED),
    ]
    await store.db.write(lambda conn: outbox(conn, events, {}))
    rows = await outbox.due(account_id=account.id, after_id=0, limit=10)
    assert len(rows) == 1
    pdu = decode(rows[0].pdu)
    assert isinstance(pdu, DeliverSm)
    assert pdu.tlvs.receipted_message_id == str(failed.id)


def test_part_states_take_each_reported_part_and_the_message_for_the_rest() -> None:
    record = message(dialect="smpp", parts=3, state=State.EXPIRED)
    parts = [{"seq": 1, "status_code": 0}, {"seq": 2, "status_code": 34}]
    ends = part_states(record, parts)
    assert [(e.state, e.status_code) for e in ends] == [
        (State.DELIVERED, 0),
        (State.FAILED, 34),
        (State.EXPIRED, record.status_code),
    ]
    assert len(part_states(dataclasses.replace(record, parts=1), [])) == 1


async def test_per_part_receipts_and_failure_only_per_part(
    services: Services, store: Store, clock: FakeClock
) -> None:
    account = await services.accounts.create_account(name="acme")
    outbox = SmppOutbox(store=store, clock=clock, id_base="decimal", keep_seconds=60)
    per_part = message(account_id=account.id, dialect="smpp", parts=3, client_ref=PER_PART_MARK)
    quiet = dataclasses.replace(per_part, id=per_part.id + 1, client_ref=PER_PART_FAILURE_ONLY_MARK)
    events: list[DomainEvent] = [
        changed(per_part, Event.REPORT_DELIVERED),
        changed(quiet, Event.REPORT_DELIVERED),
    ]
    await store.db.write(lambda conn: outbox(conn, events, {}))
    rows = await outbox.due(account_id=account.id, after_id=0, limit=10)
    receipts = [decode(r.pdu) for r in rows]
    assert [p.tlvs.receipted_message_id for p in receipts] == [str(per_part.id)] * 3


async def test_new_rows_wake_the_watchers_once_committed_and_tell_the_relays(
    services: Services, store: Store, clock: FakeClock
) -> None:
    account = await services.accounts.create_account(name="acme")
    wakeup = Wakeup()
    relayed: list[str] = []
    wakeup.add_relay(relayed.append)  # run --worker-process's datagram to the parent
    outbox = SmppOutbox(store=store, clock=clock, id_base="decimal", keep_seconds=60, wakeup=wakeup)
    seen: list[int] = []

    def woken() -> None:  # what a deliverer would read now
        seen.append(-1)
        asyncio.get_running_loop().create_task(look())

    async def look() -> None:
        seen.append(sum((await outbox.pending()).values()))

    outbox.watch(woken)
    events: list[DomainEvent] = [
        changed(message(account_id=account.id, dialect="smpp"), Event.REPORT_DELIVERED)
    ]
    await store.db.write(lambda conn: outbox(conn, events, {}))
    async with asyncio.timeout(5):
        while len(seen) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    assert seen == [-1, 1]  # woken after the commit: the row is there to read
    postgres = not store.db.is_sqlite
    assert relayed == ([] if postgres else [SMPP_OUT])  # PG: a NOTIFY in the transaction
    await store.db.write(
        lambda conn: outbox(
            conn,
            [changed(message(account_id=account.id, dialect="itnio"), Event.REPORT_DELIVERED)],
            {},
        )
    )
    await asyncio.sleep(0.05)
    assert len(seen) == 2  # no row, no wake-up


# ---- through the runtime's event bus: what is read, what is written (issue 15) ---------------


async def _smpp_batch(runtime: Runtime, acc: Account) -> list[Change]:
    """A delivered message an SMPP account submitted and an incoming SMS of its account."""
    (mid,) = await util.queue(runtime, acc, dialect="smpp", client_ref=None)
    now = runtime.clock.now_ms()
    (inbound_id,) = await runtime.store.new_ids(1, now)
    row = inbound_row(at_ms=now, seq=0, id=inbound_id, account_id=acc.id)
    await write_rows(runtime.store, inbound_rows=[row])
    return [
        MessageChange(mid, State.DELIVERED, Event.REPORT_DELIVERED, now),
        InboundStored(row["id"], now),
    ]


async def _all_rows(runtime: Runtime) -> list[str]:
    async with runtime.store.db.read() as conn:
        rows = await conn.execute(select(smpp_outbox.c.kind).order_by(smpp_outbox.c.id))
        return [kind for (kind,) in rows]


async def _insert_user_elsewhere(other: Runtime, account_id: int, system_id: str) -> None:
    """An SMPP account as another process commits it: a plain INSERT, which moves nothing
    in this process (store/smpp_users.py ``generation`` moves only for this process's)."""
    row = {
        "account_id": account_id,
        "system_id": system_id,
        "password_hash": hash_password("pw"),
        "allow_cidrs": "",
        "max_binds": 4,
        "tps": 0,
        "created_ms": 0,
    }

    async def job(conn: AsyncConnection) -> None:
        await conn.execute(insert(smpp_users).values(**row))

    await other.store.db.write(job)


async def test_without_smpp_accounts_a_batch_reads_nothing_for_the_outbox(
    runtime: Runtime, services: Services
) -> None:
    acc = await util.account(services)
    await publish_counting(runtime, await _smpp_batch(runtime, acc))  # reads who has SMPP accounts
    statements = await publish_counting(runtime, await _smpp_batch(runtime, acc))
    # No record of the message (nobody is pushed for it either), no SMPP account: nothing.
    assert [s for s in statements if "FROM messages" in s or "smpp_users" in s] == []
    assert await _all_rows(runtime) == []


async def test_smpp_account_created_in_this_process_is_seen_at_once(
    runtime: Runtime, services: Services
) -> None:
    acc = await util.account(services)
    await publish_counting(runtime, await _smpp_batch(runtime, acc))  # nobody: nothing owed
    assert await _all_rows(runtime) == []
    assert services.smpp_users is not None
    await services.smpp_users.create(account=acc.name, system_id="esme", password="pw")
    await publish_counting(runtime, await _smpp_batch(runtime, acc))  # no time passed
    assert await _all_rows(runtime) == ["receipt", "inbound"]
    statements = await publish_counting(runtime, await _smpp_batch(runtime, acc))
    assert [s for s in statements if "smpp_users" in s] == []  # known now: not read again
    assert await _all_rows(runtime) == ["receipt", "inbound"] * 2


async def test_smpp_account_created_by_another_process_is_seen_within_the_poll(
    runtime: Runtime, services: Services, clock: FakeClock, backend: str, tmp_path: Path
) -> None:
    acc = await util.account(services)
    await publish_counting(runtime, await _smpp_batch(runtime, acc))  # the worker's view: nobody
    async with opened(make_settings(tmp_path / "cli", backend), clock=clock) as other:
        await _insert_user_elsewhere(other, acc.id, "esme")
    # Within the poll interval the worker may still go by what it knew (the bound) ...
    await publish_counting(runtime, await _smpp_batch(runtime, acc))
    assert await _all_rows(runtime) == []
    # ... and from its end, the receipts and incoming SMS are owed.
    await clock.advance(POLL_MS / 1000)
    await publish_counting(runtime, await _smpp_batch(runtime, acc))
    assert await _all_rows(runtime) == ["receipt", "inbound"]


async def test_a_bind_in_this_process_is_seen_at_once(
    runtime: Runtime, services: Services, clock: FakeClock, backend: str, tmp_path: Path
) -> None:
    """An SMPP account another process created, bound here before the poll came round: the
    messages the bind submits owe their receipts at once (``simgate run``: the SMPP server
    is the worker's process)."""
    acc = await util.account(services)
    await publish_counting(runtime, await _smpp_batch(runtime, acc))
    async with opened(make_settings(tmp_path / "cli", backend), clock=clock) as other:
        await _insert_user_elsewhere(other, acc.id, "esme")
    assert services.smpp_users is not None
    grant = await services.smpp_users.check_bind(
        system_id="esme", password="pw", address="127.0.0.1"
    )
    assert isinstance(grant, BindGrant)
    await publish_counting(runtime, await _smpp_batch(runtime, acc))  # no time passed
    assert await _all_rows(runtime) == ["receipt", "inbound"]


async def test_rows_are_announced_without_a_transaction_of_their_own(
    services: Services, store: Store, clock: FakeClock
) -> None:
    """The wake-up waits for the commit of the rows' transaction, not for a no-op write
    queued behind it (one transaction, not two)."""
    account = await services.accounts.create_account(name="acme")
    wakeup = Wakeup()
    outbox = SmppOutbox(store=store, clock=clock, id_base="decimal", keep_seconds=60, wakeup=wakeup)
    woken = asyncio.Event()
    outbox.watch(woken.set)
    commits = 0

    def on_commit(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    events: list[DomainEvent] = [
        changed(message(account_id=account.id, dialect="smpp"), Event.REPORT_DELIVERED)
    ]
    event.listen(store.db.engine.sync_engine, "commit", on_commit)
    try:
        await store.db.write(lambda conn: outbox(conn, events, {}))
        assert woken.is_set()  # before the writer's caller heard of the commit
        await asyncio.sleep(0.05)  # a write queued behind it would have committed by now
    finally:
        event.remove(store.db.engine.sync_engine, "commit", on_commit)
    assert commits == 1
