"""The SMPP server end to end with our own ESME session: binds, submits, receipts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from simgate.codecs.smpp import (
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    CommandStatus,
    DataSm,
    EsmClass,
    QuerySm,
    SubmitSm,
    Tlvs,
    extract_receipt,
)
from simgate.codecs.udh import build_concat_udh
from simgate.domain.messages import State
from simgate.lines.base import IncomingSms
from tests.support.smpp_server import PASSWORD, SYSTEM_ID, Esme, raw_requests, running


async def _wait_for(predicate: object, within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not predicate():  # type: ignore[operator]
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_bind_checks_the_password_and_refuses_a_second_bind(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with running(tmp_path, sqlite_url, worker=False) as rig:
        wrong, unknown, ok, again = await raw_requests(
            rig.port,
            [
                BindTransceiver(system_id=SYSTEM_ID, password="nope"),
                BindTransceiver(system_id="nobody", password=PASSWORD),
                BindTransceiver(system_id=SYSTEM_ID, password=PASSWORD),
                BindTransmitter(system_id=SYSTEM_ID, password=PASSWORD),
            ],
        )
        assert wrong.command_status == CommandStatus.ESME_RINVPASWD
        assert unknown.command_status == CommandStatus.ESME_RINVSYSID
        assert ok.command_status == CommandStatus.ESME_ROK
        assert again.command_status == CommandStatus.ESME_RALYBND


async def test_a_bind_from_an_address_not_allowed_fails(tmp_path: Path, sqlite_url: str) -> None:
    async with running(tmp_path, sqlite_url, worker=False) as rig:
        users = rig.runtime.services.smpp_users  # type: ignore[union-attr]
        assert users is not None
        await users.create(account="acme", system_id="fenced", password="pw", allow=["10.0.0.0/8"])
        esme = await Esme.connect(rig.port)
        answer = await esme.bind(system_id="fenced", password="pw")
        assert answer.command_status == CommandStatus.ESME_RBINDFAIL
        await esme.close()


async def test_submit_is_stored_as_a_message_and_its_receipt_comes_back(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with running(tmp_path, sqlite_url) as rig:
        esme = await Esme.connect(rig.port)
        await esme.bind("trx")
        resp = await esme.request(
            SubmitSm(
                source_addr="Acme",
                source_addr_ton=5,
                destination_addr="+447700900123",
                short_message=b"hello there",
                registered_delivery=1,
            )
        )
        assert resp.command_status == CommandStatus.ESME_ROK
        message_id = resp.message_id  # type: ignore[attr-defined]
        record = await rig.runtime.services.smpp_gateway.find(  # type: ignore[union-attr]
            account_id=rig.account.id, message_id=int(message_id)
        )
        assert record is not None
        assert record.text == "hello there"
        assert record.dialect == "smpp"
        await _wait_for(lambda: esme.delivered)
        receipt = extract_receipt(esme.delivered[0])
        assert receipt is not None
        assert receipt.id == message_id
        assert receipt.stat == "DELIVRD"
        assert esme.delivered[0].tlvs.receipted_message_id == message_id
        query = await esme.request(QuerySm(message_id=message_id))
        assert query.command_status == CommandStatus.ESME_ROK
        assert query.message_state == 2  # type: ignore[attr-defined]
        # Answered: the row leaves the outbox.
        outbox = rig.runtime.services.smpp_outbox  # type: ignore[union-attr]
        assert outbox is not None
        for _ in range(200):
            if await outbox.pending() == {}:
                break
            await asyncio.sleep(0.02)
        assert await outbox.pending() == {}
        await esme.close()


async def test_long_message_by_udh_is_one_message_answered_with_one_id(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with running(tmp_path, sqlite_url, worker=False) as rig:
        esme = await Esme.connect(rig.port)
        await esme.bind("tx")
        first, second = "a" * 153, "b" * 20
        futures = [
            esme.send_nowait(
                SubmitSm(
                    destination_addr="447700900123",
                    esm_class=EsmClass.UDHI,
                    short_message=build_concat_udh(7, 2, seq, wide=False) + text.encode(),
                )
            )
            for seq, text in ((1, first), (2, second))
        ]
        answers = await asyncio.wait_for(asyncio.gather(*futures), 10)
        ids = {a.message_id for a in answers}  # type: ignore[attr-defined]
        assert all(a.command_status == 0 for a in answers)
        assert len(ids) == 1
        record = await rig.runtime.services.smpp_gateway.find(  # type: ignore[union-attr]
            account_id=rig.account.id, message_id=int(ids.pop())
        )
        assert record is not None
        assert record.text == first + second
        assert record.parts == 2
        await esme.close()


async def test_ucs2_payload_and_sar(tmp_path: Path, sqlite_url: str) -> None:
    async with running(tmp_path, sqlite_url, worker=False) as rig:
        esme = await Esme.connect(rig.port)
        await esme.bind("tx")
        payload = await esme.request(
            DataSm(
                destination_addr="447700900123",
                data_coding=8,
                tlvs=Tlvs.build(message_payload="Привет мир".encode("utf-16-be")),
            )
        )
        assert payload.command_status == 0
        sar = [
            esme.send_nowait(
                SubmitSm(
                    destination_addr="447700900124",
                    data_coding=3,
                    short_message=text.encode("latin-1"),
                    tlvs=Tlvs.build(
                        sar_msg_ref_num=300, sar_total_segments=2, sar_segment_seqnum=seq
                    ),
                )
            )
            for seq, text in ((2, "là-bas"), (1, "ça va "))
        ]
        answers = await asyncio.wait_for(asyncio.gather(*sar), 10)
        gateway = rig.runtime.services.smpp_gateway  # type: ignore[union-attr]
        assert gateway is not None
        got = await gateway.find(
            account_id=rig.account.id,
            message_id=int(payload.message_id),  # type: ignore[attr-defined]
        )
        assert got is not None
        assert got.text == "Привет мир"
        joined = await gateway.find(
            account_id=rig.account.id,
            message_id=int(answers[0].message_id),  # type: ignore[attr-defined]
        )
        assert joined is not None
        assert joined.text == "ça va là-bas"
        await esme.close()


async def test_refusals_carry_the_smsc_status(tmp_path: Path, sqlite_url: str) -> None:
    async with running(tmp_path, sqlite_url, worker=False, balance="0.015") as rig:
        esme = await Esme.connect(rig.port)
        await esme.bind("tx")

        async def status(**fields: object) -> int:
            answer = await esme.request(SubmitSm(**fields))  # type: ignore[arg-type]
            return answer.command_status

        assert await status(destination_addr="", short_message=b"x") == 0x0B  # RINVDSTADR
        assert await status(destination_addr="12", short_message=b"x") == 0x0B
        assert (
            await status(
                destination_addr="447700900123",
                source_addr="ThisIsTooLongForGSM",
                source_addr_ton=5,
                short_message=b"x",
            )
            == 0x0A  # RINVSRCADR
        )
        assert (
            await status(destination_addr="447700900123", data_coding=4, short_message=b"x")
            == 0x104
        )
        assert await status(destination_addr="447700900123", short_message=b"one") == 0
        # The balance covered one part (0.01 of 0.015): the next is refused.
        assert await status(destination_addr="447700900123", short_message=b"two") == 0x45
        await esme.close()


async def test_cancel_stops_a_queued_message(tmp_path: Path, sqlite_url: str) -> None:
    async with running(tmp_path, sqlite_url, worker=False) as rig:
        esme = await Esme.connect(rig.port)
        await esme.bind("tx")
        resp = await esme.request(SubmitSm(destination_addr="447700900123", short_message=b"x"))
        mid = resp.message_id  # type: ignore[attr-defined]
        cancel = await esme.request(CancelSm(message_id=mid))
        assert cancel.command_status == 0
        again = await esme.request(CancelSm(message_id=mid))
        assert again.command_status == CommandStatus.ESME_RCANCELFAIL
        record = await rig.runtime.services.smpp_gateway.find(  # type: ignore[union-attr]
            account_id=rig.account.id, message_id=int(mid)
        )
        assert record is not None
        assert record.state is State.REJECTED
        await esme.close()


async def test_incoming_sms_for_the_account_goes_out_as_deliver_sm(
    tmp_path: Path, sqlite_url: str
) -> None:
    numbers = {"numbers": [{"number": "447700900999", "account": "acme"}]}
    async with running(tmp_path, sqlite_url, worker=False, inbound=numbers) as rig:
        esme = await Esme.connect(rig.port)
        await esme.bind("rx")
        sv = rig.runtime.services
        assert sv is not None
        sms = IncomingSms(
            port=0,
            sender="+447700900555",
            recipient="447700900999",
            text="ping ✓",
            received_ms=sv.clock.now_ms(),
        )
        await sv.inbound.receive("sim", [sms])
        await _wait_for(lambda: esme.delivered)
        [pdu] = esme.delivered
        assert pdu.data_coding == 8
        assert pdu.short_message.decode("utf-16-be") == "ping ✓"
        assert (pdu.source_addr, pdu.destination_addr) == ("+447700900555", "447700900999")
        await esme.close()
