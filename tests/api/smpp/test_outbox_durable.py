"""Receipts pending across a dropped receiver bind and a restart of simgate (issue 18):
all 500 arrive after the new bind, none answered twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from simgate.codecs.smpp import SubmitSm
from tests.support.smpp_server import Esme, Rig, running

COUNT = 500


async def _pending(rig: Rig) -> int:
    outbox = rig.runtime.services.smpp_outbox  # type: ignore[union-attr]
    assert outbox is not None
    return sum((await outbox.pending()).values())


async def _until(check: object, within: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not await check():  # type: ignore[operator]
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_500_receipts_survive_a_drop_and_a_restart_and_none_comes_twice(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with running(tmp_path, sqlite_url) as rig:
        sender = await Esme.connect(rig.port)
        await sender.bind("tx")  # a transmitter: the receipts wait in the outbox
        sent: list[str] = []
        for start in range(0, COUNT, 50):
            answers = await asyncio.gather(
                *(
                    sender.request(
                        SubmitSm(
                            destination_addr="447700900123",
                            short_message=f"m{i}".encode(),
                            registered_delivery=1,
                        )
                    )
                    for i in range(start, start + 50)
                )
            )
            sent += [a.message_id for a in answers]  # type: ignore[attr-defined]
        assert len(set(sent)) == COUNT

        async def all_pending() -> bool:
            return await _pending(rig) == COUNT

        await _until(all_pending)
        dropping = await Esme.connect(rig.port)
        dropping.answer_limit = 200  # answers 200, then the bind drops with more in flight
        await dropping.bind("rx")
        await asyncio.wait_for(dropping.closed.wait(), 30)
        await sender.close()
    first = [d.tlvs.receipted_message_id or "" for d in dropping.answered]
    assert len(first) == 200

    # simgate restarts on the same database.
    async with running(tmp_path, sqlite_url) as rig:
        receiver = await Esme.connect(rig.port)
        await receiver.bind("rx")

        async def none_pending() -> bool:
            return await _pending(rig) == 0

        await _until(none_pending)
        await asyncio.sleep(0.5)  # anything sent twice would come now
        await receiver.close()
    second = [d.tlvs.receipted_message_id or "" for d in receiver.answered]
    answered = first + second
    assert sorted(answered) == sorted(sent)  # all 500, each answered once
