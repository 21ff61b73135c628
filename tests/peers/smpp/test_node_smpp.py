"""The SMPP line against the npm ``smpp`` server (a real SMSC implementation), end to end
through a Runtime: store, dispatcher, line, receipts. Every case ends with each message in
its right final state, none lost, none sent twice (UNKNOWN ones are never resent, spec §7).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from simgate.codecs.udh import parse_udh
from simgate.domain.messages import State
from tests.conftest import need_peer

from .runtime_support import numbers, send, settle, smpp_line, smpp_runtime
from .support import NodeSmsc, node_smpp_missing

pytestmark = pytest.mark.peer

LONG_UCS2 = "Доставка заказа №12345 запланирована на завтра, курьер позвонит заранее. " * 2


@pytest.fixture
def node_ok() -> None:
    problem = node_smpp_missing()
    need_peer("node-smpp", not problem, problem)


def _db(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'simgate.db'}"


def _udh(entry: dict[str, Any]) -> bytes:
    """The UDH node saw: it lists the information elements, without the UDHL octet."""
    ies = bytes.fromhex("".join(entry["udh"]))
    return bytes([len(ies)]) + ies


def _accepted_per_number(smsc: NodeSmsc) -> Counter[str]:
    return Counter(e["dst"] for e in smsc.entries("submit") if e["status"] == 0)


async def _run(
    tmp_path: Path, smsc: NodeSmsc, count: int, text: str = "hello", **line: Any
) -> tuple[list[str], list[State]]:
    nums = numbers(count)
    async with smpp_runtime(tmp_path, _db(tmp_path), smpp_line(smsc.port, **line)) as (
        rt,
        sv,
        acct,
    ):
        ids = await send(sv, acct, nums, text)
        await rt.start_worker()
        rows = await settle(rt.store, ids)
    by_id = {r.id: r for r in rows}
    return [by_id[i].recipient for i in ids], [by_id[i].state for i in ids]


async def test_accepts_long_ucs2_with_correct_udh_and_delivers(
    node_ok: None, tmp_path: Path
) -> None:
    with NodeSmsc(tmp_path) as smsc:
        nums, states = await _run(tmp_path, smsc, 5, LONG_UCS2)
    assert states == [State.DELIVERED] * 5
    submits = smsc.entries("submit")
    assert len(submits) == 5 * 3  # 148 UCS-2 units: 3 parts each, each sent once
    for number in nums:
        parts = [e for e in submits if e["dst"] == number]
        udhs = [parse_udh(_udh(e))[0] for e in parts]
        assert all(u is not None for u in udhs)
        assert sorted(u.seq for u in udhs if u) == [1, 2, 3]
        assert len({(u.ref, u.total) for u in udhs if u}) == 1
        assert all(e["data_coding"] == 8 and e["esm_class"] & 0x40 for e in parts)
        ordered = sorted(parts, key=lambda e: bytes.fromhex(e["udh"][0])[-1])
        assert "".join(e["text"] for e in ordered) == LONG_UCS2
    assert Counter(e["status"] for e in smsc.entries("deliver_resp")) == {0: 15}


async def test_throttling_slows_down_and_everything_arrives_once(
    node_ok: None, tmp_path: Path
) -> None:
    with NodeSmsc(tmp_path, throttle_after=4, throttle_times=6) as smsc:
        nums, states = await _run(tmp_path, smsc, 12)
    assert states == [State.DELIVERED] * 12
    assert _accepted_per_number(smsc) == dict.fromkeys(nums, 1)
    assert sum(1 for e in smsc.entries("submit") if e["status"] == 0x58) == 6


async def test_permanent_error_rejects_without_retrying(node_ok: None, tmp_path: Path) -> None:
    with NodeSmsc(tmp_path, error_status=0x0B) as smsc:
        nums, states = await _run(tmp_path, smsc, 4)
    assert states == [State.REJECTED] * 4
    assert Counter(e["dst"] for e in smsc.entries("submit")) == dict.fromkeys(nums, 1)


async def test_no_answer_leaves_unknown_and_never_resends(node_ok: None, tmp_path: Path) -> None:
    with NodeSmsc(tmp_path, silent_after=3) as smsc:
        nums, states = await _run(tmp_path, smsc, 6)
    assert Counter(states) == {State.DELIVERED: 3, State.UNKNOWN: 3}
    assert Counter(e["dst"] for e in smsc.entries("submit")) == dict.fromkeys(nums, 1)


async def test_connection_dropped_mid_window(node_ok: None, tmp_path: Path) -> None:
    nums = numbers(10)
    with NodeSmsc(tmp_path, drop_after=3) as smsc:
        line = smpp_line(smsc.port)
        async with smpp_runtime(tmp_path, _db(tmp_path), line) as (rt, sv, acct):
            ids = await send(sv, acct, nums, "hello")
            await rt.start_worker()
            rows = await settle(rt.store, ids)
            later = await send(sv, acct, numbers(3, 8613800900000), "after the drop")
            later_rows = await settle(rt.store, later)
    states = [r.state for r in sorted(rows, key=lambda r: r.id)]
    accepted = _accepted_per_number(smsc)
    seen = Counter(e["dst"] for e in smsc.entries("submit"))
    assert all(seen[n] <= 1 for n in nums)  # nothing sent twice
    for number, state in zip(nums, states, strict=True):
        if state is State.DELIVERED:
            assert accepted[number] == 1
        else:  # written into the dropped connection, answer lost: never resent
            assert state is State.UNKNOWN
    assert State.UNKNOWN in states
    assert [r.state for r in later_rows] == [State.DELIVERED] * 3  # the line came back
    assert len(smsc.entries("bind")) == 2


async def test_receipts_before_the_response_in_decimal(node_ok: None, tmp_path: Path) -> None:
    with NodeSmsc(tmp_path, receipts="before", receipt_ids="decimal") as smsc:
        nums, states = await _run(tmp_path, smsc, 8, "x" * 170)
    assert states == [State.DELIVERED] * 8
    assert _accepted_per_number(smsc) == dict.fromkeys(nums, 2)


async def test_receipts_on_another_bind(node_ok: None, tmp_path: Path) -> None:
    with NodeSmsc(tmp_path, receipt_bind="other") as smsc:
        _, states = await _run(tmp_path, smsc, 6, transceivers=0, transmitters=1, receivers=1)
    assert states == [State.DELIVERED] * 6
    assert sorted(e["kind"] for e in smsc.entries("bind")) == ["receiver", "transmitter"]


async def test_failed_receipts_fail_the_message(node_ok: None, tmp_path: Path) -> None:
    with NodeSmsc(tmp_path, stat="UNDELIV") as smsc:
        _, states = await _run(tmp_path, smsc, 3)
    assert states == [State.FAILED] * 3
