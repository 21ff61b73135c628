"""The SMPP receipt outbox: receipts and incoming SMS as stored deliver_sm, owed once."""

from __future__ import annotations

import asyncio
import dataclasses

from simgate.codecs.smpp import DeliverSm, decode, extract_receipt
from simgate.domain.events import DomainEvent
from simgate.domain.messages import Event, State
from simgate.lease_loop import SMPP_OUT, Wakeup
from simgate.services.container import Services
from simgate.services.smpp_gateway import (
    FAILURE_ONLY_MARK,
    PER_PART_FAILURE_ONLY_MARK,
    PER_PART_MARK,
)
from simgate.services.smpp_outbox import SmppOutbox, inbound_pdu, part_states, receipt_pdu
from simgate.store import Store
from simgate.testing.clock import FakeClock
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
