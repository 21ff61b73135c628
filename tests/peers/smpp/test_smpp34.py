"""The SMPP line against smpp34's server (a second, independent SMPP implementation with a
Rust core), in-process: submits with receipts, and incoming SMS in concatenated parts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from simgate.codecs.ucs2 import encode_ucs2
from simgate.codecs.udh import build_concat_udh
from simgate.domain.messages import State

from .runtime_support import numbers, send, settle, smpp_line, smpp_runtime
from .smpp34_peer import running

pytestmark = pytest.mark.peer


async def test_submits_and_receipts_through_smpp34(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'simgate.db'}"
    async with (
        running() as smsc,
        smpp_runtime(tmp_path, url, smpp_line(smsc.port)) as (rt, sv, acct),
    ):
        short = await send(sv, acct, numbers(4), "plain GSM text {ok}", sender="Shop")
        long = await send(sv, acct, numbers(2, 8613800200000), "ж" * 100)  # UCS-2: 2 parts
        await rt.start_worker()
        rows = await settle(rt.store, short + long)
    assert [r.state for r in rows] == [State.DELIVERED] * 6
    assert len(smsc.submits) == 4 + 2 * 2
    assert sum(1 for s in smsc.submits if s.data_coding == 8 and s.esm_class & 0x40) == 4
    assert {(s.source_addr_ton, s.source_addr) for s in smsc.submits} == {(5, "Shop"), (0, "")}
    assert set(smsc.receipt_answers) == {0}


async def test_incoming_concatenated_sms_from_smpp34(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'simgate.db'}"
    async with (
        running() as smsc,
        smpp_runtime(tmp_path, url, smpp_line(smsc.port)) as (rt, _sv, acct),
    ):
        await rt.start_worker()
        for _ in range(100):
            if smsc.esmes:
                break
            await asyncio.sleep(0.02)
        (esme,) = smsc.esmes.values()
        parts = ["Здравствуйте, ", "это ответ"]
        answers = []
        for seq in (2, 1):
            body = build_concat_udh(0xBEEF, 2, seq, wide=True) + encode_ucs2(parts[seq - 1])
            resp = await esme.deliver_sm(
                "12345", body, source_addr="447700900123", esm_class=0x40, data_coding=8
            )
            answers.append(resp.command_status)
        async with rt.store.db.read() as conn:
            rows = await rt.store.inbound.page(conn, account_id=acct.id)
    assert answers == [0, 0]
    assert [(r.sender, r.recipient, r.text, r.parts) for r in rows] == [
        ("447700900123", "12345", "Здравствуйте, это ответ", 2)
    ]
