"""Receipts owed to an SMPP account survive a dropped receiver bind and a SIGKILL of
``simgate run`` (issue 18 "Done when"): after the restart and a new bind all 500 arrive,
and none is answered twice.

A second receiver takes deliver_sm without answering when the kill comes, so rows are in
flight on a live bind at that moment: unanswered, they must come again after the restart.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from simgate.codecs.smpp import SubmitSm
from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port, toml_text
from tests.process.runs import SPLIT, crash_config
from tests.process.support import open_services
from tests.support.smpp_server import PASSWORD, SYSTEM_ID, Esme

pytestmark = pytest.mark.slow

COUNT = 500
FIRST_ANSWERED = 200
LINE = {"seed": 3, "submit_latency_ms": 1, "report_delay_ms": 20, "delivery_ratio": 1.0}


def _config(tmp_path: Path, *, http_port: int, smpp_port: int) -> Path:
    """The kill tests' config (short leases, busy reaper) with the SMPP server on."""
    path = crash_config(tmp_path, tmp_path / "sim.journal", http_port, line=LINE)
    table = toml_text({"smpp_server": {"enabled": True, "port": smpp_port}})
    path.write_text(path.read_text() + "\n" + table)
    return path


async def _until(check: object, what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}: not in {within} s"
        await asyncio.sleep(0.05)


async def _connect(port: int, within: float = 30.0) -> Esme:
    deadline = time.monotonic() + within
    while True:
        try:
            return await Esme.connect(port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_500_receipts_pending_survive_a_drop_and_a_sigkill_none_twice(
    tmp_path: Path,
) -> None:
    http_port, smpp_port = free_port(), free_port()
    config = _config(tmp_path, http_port=http_port, smpp_port=smpp_port)
    rt = await open_services(load_settings(config))
    sv = rt.services
    assert sv is not None
    assert sv.smpp_users is not None
    assert sv.smpp_outbox is not None
    outbox = sv.smpp_outbox
    try:
        await sv.accounts.create_account(name="acme", balance="1000")
        await sv.smpp_users.create(
            account="acme", system_id=SYSTEM_ID, password=PASSWORD, max_binds=8
        )

        async def pending() -> int:
            return sum((await outbox.pending()).values())

        # `run`'s default mode: the SMPP server and its receipts' deliverer are in the HTTP
        # parent the kill hits (the worker child stops gracefully, PDEATHSIG).
        first = SimgateProcess(list(SPLIT), workdir=tmp_path, config=config, port=http_port)
        with first:
            await asyncio.to_thread(first.wait_healthy, 30.0)
            sender = await _connect(smpp_port)
            await sender.bind("tx")  # a transmitter: the receipts wait in the outbox
            sent: list[str] = []
            for start in range(0, COUNT, 50):  # within the bind's window of 64
                answers = await asyncio.gather(
                    *(
                        sender.request(
                            SubmitSm(
                                destination_addr="447700900123",
                                short_message=f"m{i}".encode(),
                                registered_delivery=1,
                            ),
                            within=30.0,
                        )
                        for i in range(start, start + 50)
                    )
                )
                sent += [a.message_id for a in answers]  # type: ignore[attr-defined]
            assert len(set(sent)) == COUNT

            async def all_pending() -> bool:
                return await pending() == COUNT

            await _until(all_pending, "all receipts in the outbox")
            dropping = await _connect(smpp_port)
            dropping.answer_limit = FIRST_ANSWERED  # then the bind drops, more in flight
            await dropping.bind("rx")
            await asyncio.wait_for(dropping.closed.wait(), 30)

            async def acks_recorded() -> bool:
                return await pending() == COUNT - FIRST_ANSWERED

            await _until(acks_recorded, "the answered receipts removed")
            silent = await _connect(smpp_port)
            silent.answer_deliver = False  # takes deliver_sm, answers none
            await silent.bind("rx")

            async def some_in_flight() -> bool:
                return len(silent.delivered) > 0

            await _until(some_in_flight, "deliver_sm in flight on the silent bind")
            first.kill()  # SIGKILL with receipts pending and some in flight
            await sender.close()
            await silent.close()
        in_flight_at_kill = len(silent.delivered)
        assert await pending() == COUNT - FIRST_ANSWERED  # nothing lost with the process

        second = SimgateProcess(list(SPLIT), workdir=tmp_path, config=config, port=http_port)
        with second:
            await asyncio.to_thread(second.wait_healthy, 30.0)
            receiver = await _connect(smpp_port)
            await receiver.bind("rx")

            async def none_pending() -> bool:
                return await pending() == 0

            await _until(none_pending, "every receipt answered after the restart")
            await asyncio.sleep(0.5)  # anything sent twice would come now
            await receiver.close()
            second.stop()
    finally:
        await rt.close()
    answered = [d.tlvs.receipted_message_id or "" for d in dropping.answered]
    answered += [d.tlvs.receipted_message_id or "" for d in receiver.answered]
    assert in_flight_at_kill > 0
    assert len(dropping.answered) == FIRST_ANSWERED
    assert sorted(answered) == sorted(sent)  # all 500, each answered once
