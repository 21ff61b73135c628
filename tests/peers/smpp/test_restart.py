"""What the SMPP line leaves between two runs: a restart of the runtime loses nothing.

A long message sent in payload mode is one submit_sm with one SMSC id, stored as one part
per segment (billing counts segments): its receipt, arriving after a restart, settles every
part. A long incoming SMS whose first part came before the restart and second after it is
stored once, whole: the first part was acknowledged, so it was durable.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simgate.codecs.gsm7 import encode_septets
from simgate.codecs.udh import build_concat_udh
from simgate.domain.messages import State

from .runtime_support import numbers, send, settle, smpp_line, smpp_runtime
from .smpp34_peer import running

pytestmark = pytest.mark.peer

LONG = "The parcel is on its way and will be delivered tomorrow between 9 and 12. " * 3


def _db(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'simgate.db'}"


async def test_payload_receipt_after_restart_settles_every_part(tmp_path: Path) -> None:
    line = smpp_line(0, long_messages="payload")
    async with running(receipts=False) as smsc:
        line["port"] = smsc.port
        async with smpp_runtime(tmp_path, _db(tmp_path), line) as (rt, sv, acct):
            ids = await send(sv, acct, numbers(1), LONG)
            await rt.start_worker()
            (sent,) = await settle(rt.store, ids, {State.SENT})
        assert (sent.state, sent.parts) == (State.SENT, 2)
        assert len(smsc.submits) == 1  # one submit_sm carried the whole text
        (message_id,) = smsc.accepted
        async with smpp_runtime(tmp_path, _db(tmp_path), line) as (rt, _sv, _acct):
            await rt.start_worker()
            answer = await smsc.send_receipt(await smsc.session(), message_id, sent.recipient)
            (row,) = await settle(rt.store, ids, within=5)
    assert answer == 0
    assert (row.state, row.parts_reported) == (State.DELIVERED, 2)


async def test_incoming_parts_across_a_restart_are_stored_once_whole(tmp_path: Path) -> None:
    halves = ["Meet me at the station at ", "six, not seven."]

    def part(seq: int) -> bytes:
        return build_concat_udh(0x42, 2, seq, wide=False) + encode_septets(halves[seq - 1])

    line = smpp_line(0, reassembly_timeout=60)
    async with running() as smsc:
        line["port"] = smsc.port
        async with smpp_runtime(tmp_path, _db(tmp_path), line) as (rt, _sv, acct):
            await rt.start_worker()
            first = await (await smsc.session()).deliver_sm(
                "12345", part(1), source_addr="447700900123", esm_class=0x40
            )
        async with smpp_runtime(tmp_path, _db(tmp_path), line) as (rt, _sv, acct):
            await rt.start_worker()
            second = await (await smsc.session()).deliver_sm(
                "12345", part(2), source_addr="447700900123", esm_class=0x40
            )
            async with rt.store.db.read() as conn:
                rows = await rt.store.inbound.page(conn, account_id=acct.id)
    assert (first.command_status, second.command_status) == (0, 0)
    assert [(r.sender, r.recipient, r.text, r.parts) for r in rows] == [
        ("447700900123", "12345", "".join(halves), 2)
    ]
