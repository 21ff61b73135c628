"""Receipts per part (issue 18): a long message sent as several submit_sm that asked for a
receipt on more than one part gets one receipt per part; asked on one part only, one per
message; registered_delivery 2 gets none when every part is delivered."""

from __future__ import annotations

import asyncio
from pathlib import Path

from simgate.codecs.smpp import EsmClass, SubmitSm, extract_receipt
from simgate.codecs.udh import build_concat_udh
from tests.support.smpp_server import Esme, Rig, running

TEXTS = ("a" * 153, "b" * 153, "c" * 20)


async def _send_long(esme: Esme, ref: int, flags: tuple[int, int, int]) -> str:
    futures = [
        esme.send_nowait(
            SubmitSm(
                destination_addr="447700900123",
                esm_class=EsmClass.UDHI,
                short_message=build_concat_udh(ref, 3, seq, wide=False) + text.encode(),
                registered_delivery=flag,
            )
        )
        for seq, (text, flag) in enumerate(zip(TEXTS, flags, strict=True), start=1)
    ]
    answers = await asyncio.wait_for(asyncio.gather(*futures), 10)
    ids = {a.message_id for a in answers}  # type: ignore[attr-defined]
    assert len(ids) == 1
    return str(ids.pop())


async def _settled(rig: Rig, esme: Esme, ids: list[str]) -> None:
    """Until the messages are final and their outbox rows answered."""
    services = rig.runtime.services
    assert services is not None
    gateway, outbox = services.smpp_gateway, services.smpp_outbox
    assert gateway is not None
    assert outbox is not None
    loop = asyncio.get_running_loop()
    end = loop.time() + 20
    while True:
        records = [await gateway.find(account_id=rig.account.id, message_id=int(i)) for i in ids]
        final = all(r is not None and r.final_ms for r in records)
        if final and await outbox.pending() == {}:
            return
        assert loop.time() < end, "receipts did not settle"
        await asyncio.sleep(0.05)


async def test_receipts_per_part_only_when_more_than_one_part_asked(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with running(tmp_path, sqlite_url) as rig:
        esme = await Esme.connect(rig.port)
        await esme.bind("trx")
        every_part = await _send_long(esme, 1, (1, 1, 1))
        last_part = await _send_long(esme, 2, (0, 0, 1))
        quiet = await _send_long(esme, 3, (2, 2, 2))  # failure only, and all are delivered
        await _settled(rig, esme, [every_part, last_part, quiet])
        await asyncio.sleep(0.3)  # a late extra receipt would show now
        await esme.close()
    ids = [d.tlvs.receipted_message_id for d in esme.delivered]
    assert ids.count(every_part) == 3
    assert ids.count(last_part) == 1
    assert ids.count(quiet) == 0
    for d in esme.delivered:
        receipt = extract_receipt(d)
        assert receipt is not None
        assert receipt.stat == "DELIVRD"
