"""A receipt after a restart settles a message whose submit a crash left unrecorded (issue 13
item 9), against the npm ``smpp`` server (a real SMSC implementation).

The first process leases, submits through the SMPP line and dies before recording the
answer; the SMSC keeps the receipt (its bind is gone) and delivers it when the next process
binds. Nothing in the database links the SMSC's id to the message: the line's refs journal
(lines/smpp/refs.py) does, so the receipt settles the message the reaper left UNKNOWN.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from simgate.codecs.segments import choose_encoding, part_count
from simgate.domain.messages import State
from simgate.lines.base import SubmitRequest
from simgate.lines.smpp import SmppLine
from tests.conftest import need_peer
from tests.lines.smpp.support import RecordingSink

from .runtime_support import numbers, send, settle, smpp_line, smpp_runtime
from .support import NodeSmsc, node_smpp_missing

pytestmark = pytest.mark.peer

LEASE_S = 0.5


@pytest.fixture
def node_ok() -> None:
    problem = node_smpp_missing()
    need_peer("node-smpp", not problem, problem)


@pytest.mark.parametrize("receipt_ids", ["hex", "decimal"])
async def test_a_receipt_after_a_restart_settles_the_message_left_unknown(
    node_ok: None, tmp_path: Path, receipt_ids: str
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'simgate.db'}"
    texts = ["hello", "x" * 170]  # one part, and two (two SMSC ids, two receipts)
    with NodeSmsc(tmp_path, receipt_delay_ms=1500, receipt_ids=receipt_ids) as smsc:
        line_cfg = smpp_line(smsc.port)
        async with smpp_runtime(tmp_path, db, line_cfg, lease_seconds=LEASE_S) as (rt, sv, acct):
            ids = [
                (await send(sv, acct, numbers(1, 8613800200000 + i), t))[0]
                for i, t in enumerate(texts)
            ]
            now = sv.clock.now_ms()
            leased = await sv.messaging.lease(
                lines=["smsc"], owner="doomed", now_ms=now,
                lease_until_ms=now + int(LEASE_S * 1000), limit=10,
            )  # fmt: skip
            line = sv.lines["smsc"]
            assert isinstance(line, SmppLine)
            await line.start(RecordingSink())
            for m in leased:  # the line answers; the process dies before recording it
                enc = choose_encoding(m.text)
                result = await line.submit(
                    SubmitRequest(
                        m.id, 0, m.sender, m.recipient, m.text, enc,
                        part_count(m.text, enc), True, lease_seq=m.lease_seq,
                    )
                )  # fmt: skip
                assert result.part_refs
            await line.stop()  # its bind goes away before the receipts are due
        assert not smsc.entries("deliver_resp")  # no receipt reached the first process
        await asyncio.sleep(LEASE_S)
        restarted = smpp_runtime(tmp_path, db, line_cfg, account="other", lease_seconds=LEASE_S)
        async with restarted as (rt, sv, _):
            await rt.start_worker()  # its reaper marks them UNKNOWN, its line binds again
            rows = await settle(rt.store, ids, {State.DELIVERED}, within=15)
    assert [r.state for r in rows] == [State.DELIVERED, State.DELIVERED]
    assert all(r.unknown_ms is not None for r in rows)  # UNKNOWN first, then the receipts
    assert [r.parts_reported for r in rows] == [1, 2]
    assert len(smsc.entries("submit")) == 3  # each part once: nothing was resent
    assert [e["status"] for e in smsc.entries("deliver_resp")] == [0, 0, 0]
