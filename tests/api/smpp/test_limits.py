"""Throttling (token bucket per SMPP account) and the window per bind (issue 18)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from simgate.codecs.smpp import CommandStatus, EsmClass, SubmitSm
from simgate.codecs.udh import build_concat_udh
from simgate.domain.messages import State
from tests.support.smpp_server import Esme, running


async def test_a_burst_of_five_times_the_rate_is_throttled_and_the_rest_sent_once(
    tmp_path: Path, sqlite_url: str
) -> None:
    tps = 10
    async with running(tmp_path, sqlite_url, tps=tps) as rig:
        esme = await Esme.connect(rig.port)
        await esme.bind("trx")
        futures = [
            esme.send_nowait(
                SubmitSm(destination_addr="447700900123", short_message=b"x", registered_delivery=1)
            )
            for _ in range(5 * tps)
        ]
        answers = await asyncio.wait_for(asyncio.gather(*futures), 20)
        statuses = Counter(a.command_status for a in answers)
        assert set(statuses) == {CommandStatus.ESME_ROK, CommandStatus.ESME_RTHROTTLED}
        # One second of tokens passes; the excess of the burst is refused.
        assert tps <= statuses[CommandStatus.ESME_ROK] < 5 * tps
        ids = [int(a.message_id) for a in answers if a.command_status == 0]  # type: ignore[attr-defined]
        assert len(set(ids)) == len(ids)
        gateway = rig.runtime.services.smpp_gateway  # type: ignore[union-attr]
        assert gateway is not None

        async def all_delivered() -> bool:
            records = [await gateway.find(account_id=rig.account.id, message_id=i) for i in ids]
            return all(r is not None and r.state is State.DELIVERED for r in records)

        loop = asyncio.get_running_loop()
        end = loop.time() + 15
        while not await all_delivered():
            assert loop.time() < end, "accepted messages not delivered"
            await asyncio.sleep(0.05)
        # Sent once each: one receipt per accepted message, none for a throttled one.
        while len(esme.delivered) < len(ids):
            assert loop.time() < end, "receipts missing"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a duplicate would come now
        receipted = [d.tlvs.receipted_message_id or "" for d in esme.delivered]
        assert sorted(receipted) == sorted(str(i) for i in ids)
        await esme.close()


async def test_a_full_window_answers_msgqful(tmp_path: Path, sqlite_url: str) -> None:
    async with running(tmp_path, sqlite_url, worker=False, smpp={"window": 2}) as rig:
        esme = await Esme.connect(rig.port)
        await esme.bind("tx")
        # First parts of three long messages: each waits for its second part, holding a slot.
        held = [
            esme.send_nowait(
                SubmitSm(
                    destination_addr="447700900123",
                    esm_class=EsmClass.UDHI,
                    short_message=build_concat_udh(ref, 2, 1, wide=False) + b"part one",
                )
            )
            for ref in (1, 2, 3)
        ]
        third = await asyncio.wait_for(held[2], 10)
        assert third.command_status == CommandStatus.ESME_RMSGQFUL
        assert not held[0].done()
        assert not held[1].done()
        await esme.close()
