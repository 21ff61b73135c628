"""Receipts become part reports (acked after commit); deliver_sm becomes incoming SMS."""

from __future__ import annotations

import asyncio
import logging

import pytest

from simgate.codecs.gsm7 import encode_septets
from simgate.codecs.smpp import CommandStatus, DeliverSm, EsmClass, Tlvs, normalize_message_id
from simgate.codecs.ucs2 import encode_ucs2
from simgate.codecs.udh import build_concat_udh
from simgate.errors import StoreError
from simgate.lines.base import Outcome
from simgate.lines.smpp.deliveries import Deliveries
from simgate.lines.smpp.receipts import ReceiptMatcher
from simgate.settings import SmppLineSettings
from simgate.testing.clock import FakeClock
from simgate.testing.lines import RecordingSink
from simgate.testing.smsc import FakeSmsc

from .support import eventually, request, started_line


async def test_receipt_reports_the_part_delivered() -> None:
    async with FakeSmsc() as smsc, started_line(smsc.port) as (line, sink):
        result = await line.submit(request())
        await eventually(lambda: bool(sink.reports))
    assert [(r.line_ref, r.status_code) for r in sink.reports] == [(result.part_refs[0], 0)]
    assert smsc.deliver_answers == [0]


async def test_failed_and_intermediate_receipts() -> None:
    stats = iter(["UNDELIV", "ENROUTE", "EXPIRED"])
    async with (
        FakeSmsc(stat=lambda _: next(stats)) as smsc,
        started_line(smsc.port) as (line, sink),
    ):
        results = [await line.submit(request()) for _ in range(3)]
        await eventually(lambda: len(smsc.deliver_answers) == 3 and len(sink.reports) == 2)
    got = {r.line_ref: r.status_code for r in sink.reports}
    assert got == {results[0].part_refs[0]: 0x41, results[2].part_refs[0]: 0x46}
    assert smsc.deliver_answers == [0, 0, 0]  # the ENROUTE one is acknowledged, not reported


async def test_decimal_receipt_ids_match_hex_submit_ids_and_teach_the_line() -> None:
    async with FakeSmsc(receipt_ids="decimal") as smsc, started_line(smsc.port) as (line, sink):
        result = await line.submit(request())
        await eventually(lambda: bool(sink.reports))
    assert [r.line_ref for r in sink.reports] == list(result.part_refs)
    assert line.matcher.learned == "receipt_decimal"
    # After a restart the memory is empty: the learned transform still maps the id.
    (sid,) = smsc.accepted
    assert line.matcher.fallback(str(int(sid, 16)).zfill(10)) == normalize_message_id(sid)


async def test_receipt_before_the_response_is_matched() -> None:
    async with (
        FakeSmsc.receipt_before_resp(receipt_ids="decimal") as smsc,
        started_line(smsc.port) as (line, sink),
    ):
        result = await line.submit(request())
        await eventually(lambda: bool(sink.reports))
    assert [r.line_ref for r in sink.reports] == list(result.part_refs)


async def test_receipts_on_another_bind_with_tx_and_rx() -> None:
    kw = {"transceivers": 0, "transmitters": 1, "receivers": 1}
    async with (
        FakeSmsc(receipts_on_other_bind=True) as smsc,
        started_line(smsc.port, **kw) as (line, sink),
    ):
        await eventually(lambda: all(b.bound for b in line.binds))
        result = await line.submit(request("x" * 300))
        await eventually(lambda: len(sink.reports) == 2)
    assert result.outcome is Outcome.OK
    assert sorted(r.line_ref for r in sink.reports) == sorted(result.part_refs)
    assert {c.kind for c in smsc.conns} == {"BindTransmitter", "BindReceiver"}


async def test_tlv_only_receipt() -> None:
    async with FakeSmsc() as smsc, started_line(smsc.port) as (line, sink):
        result = await line.submit(request(report=False))
        (sid,) = smsc.accepted
        tlvs = Tlvs.build(receipted_message_id=sid.upper(), message_state=5)
        status = await smsc.deliver(DeliverSm(source_addr="1", destination_addr="2", tlvs=tlvs))
    assert status == 0
    assert [(r.line_ref, r.status_code) for r in sink.reports] == [(result.part_refs[0], 0x41)]


async def test_receipt_is_acknowledged_only_after_commit() -> None:
    async with FakeSmsc() as smsc, started_line(smsc.port) as (line, sink):
        answers_at_commit: list[int] = []
        sink.on_report = lambda: answers_at_commit.append(len(smsc.deliver_answers))
        sink.fail = 1
        await line.submit(request())
        await eventually(lambda: bool(smsc.deliver_answers))
    assert answers_at_commit == [0]
    assert smsc.deliver_answers == [CommandStatus.ESME_RX_T_APPN]  # SMSC will redeliver
    assert sink.reports == []


def _mo(body: bytes, *, dc: int = 0, udh: bool = False, tlvs: Tlvs | None = None) -> DeliverSm:
    return DeliverSm(
        source_addr="447700900123", destination_addr="12345", data_coding=dc,
        esm_class=EsmClass.UDHI if udh else 0, short_message=body, tlvs=tlvs or Tlvs(),
    )  # fmt: skip


async def test_incoming_sms_whole_and_in_udh_parts_are_handed_to_the_sink() -> None:
    async with FakeSmsc() as smsc, started_line(smsc.port) as (_line, sink):
        where = f"127.0.0.1:{smsc.port}"
        assert await smsc.deliver(_mo(encode_septets("hi there"))) == 0
        parts = ["Привет, ", "мир", "!"]
        for seq in (3, 1, 2):
            body = build_concat_udh(0x1234, 3, seq, wide=True) + encode_ucs2(parts[seq - 1])
            assert await smsc.deliver(_mo(body, dc=8, udh=True)) == 0
    assert [(m.sender, m.recipient, m.text, m.parts) for m in sink.incoming_sms] == [
        ("447700900123", "12345", "hi there", 1)
    ]
    got = [(p.sender, p.recipient, p.ref, p.total, p.seq, p.data_coding) for p in sink.parts]
    assert got == [("447700900123", "12345", 0x1234, 3, seq, 8) for seq in (3, 1, 2)]
    assert [p.data for p in sink.parts] == [encode_ucs2(parts[s - 1]) for s in (3, 1, 2)]
    assert {p.smsc for p in sink.parts} == {where}


async def test_sar_parts_are_handed_on_and_the_timer_asks_for_late_messages() -> None:
    timeout = 0.2
    async with (
        FakeSmsc() as smsc,
        started_line(smsc.port, reassembly_timeout=timeout) as (line, sink),
    ):
        tlvs = Tlvs.build(sar_msg_ref_num=9, sar_total_segments=2, sar_segment_seqnum=2)
        assert await smsc.deliver(_mo(b"world", dc=3, tlvs=tlvs)) == 0
        await eventually(lambda: len(sink.parts_due) >= 2)
        now = line.clock.now_ms()
    assert [(p.ref, p.total, p.seq, p.data) for p in sink.parts] == [(9, 2, 2, b"world")]
    # Each sweep asks for the messages begun one reassembly timeout ago or earlier.
    assert all(now - 1000 * timeout - 100 <= t <= now - 1000 * timeout for t in sink.parts_due)
    assert sink.incoming_sms == []  # the line assembles nothing itself


async def test_a_part_the_sink_cannot_take_now_is_refused_for_a_retry() -> None:
    body = build_concat_udh(7, 2, 1, wide=False) + encode_septets("ab")
    async with FakeSmsc() as smsc, started_line(smsc.port) as (_line, sink):
        sink.busy = 1
        first = await smsc.deliver(_mo(body, udh=True))
        second = await smsc.deliver(_mo(body, udh=True))
    assert (first, second) == (CommandStatus.ESME_RX_T_APPN, 0)
    assert [p.seq for p in sink.parts] == [1]


async def test_incoming_not_committed_is_answered_with_a_temporary_error() -> None:
    async with FakeSmsc() as smsc, started_line(smsc.port) as (_line, sink):
        sink.fail = 1
        first = await smsc.deliver(_mo(encode_septets("retry me")))
        second = await smsc.deliver(_mo(encode_septets("retry me")))
    assert (first, second) == (CommandStatus.ESME_RX_T_APPN, 0)
    assert [m.text for m in sink.incoming_sms] == ["retry me"]


class _StoreAway(RecordingSink):
    """A sink whose database is away for the first ``failures`` sweeps."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def expire_parts(self, line: str, *, started_before_ms: int) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError("connection refused")
        await super().expire_parts(line, started_before_ms=started_before_ms)


async def test_a_failing_sweep_logs_its_start_and_end_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 14 item 10: the reassembly sweep logged a traceback every few seconds while the
    database was away; now one line when it starts failing and one when it works again."""
    clock = FakeClock()
    cfg = SmppLineSettings(system_id="u", password="p", reassembly_timeout=20)  # sweeps: 5 s
    deliveries = Deliveries(
        line="smsc", cfg=cfg, clock=clock, matcher=ReceiptMatcher("auto"), in_flight=lambda: False
    )
    sink = _StoreAway(failures=12)
    with caplog.at_level(logging.DEBUG, logger="simgate.lines.smpp.deliveries"):
        deliveries.start(sink)
        for _ in range(5):  # the sweeper's first sleep starts
            await asyncio.sleep(0)
        try:
            for _ in range(14):
                await clock.advance(5)
                for _ in range(5):
                    await asyncio.sleep(0)
        finally:
            await deliveries.stop()
    assert len(sink.parts_due) == 2  # the sweeps after the outage ran
    mine = [r for r in caplog.records if r.name == "simgate.lines.smpp.deliveries"]
    assert [r.levelno for r in mine] == [logging.ERROR, logging.WARNING], caplog.text
    assert "connection refused" in mine[0].getMessage()
    assert "works again after 60.0 s, 12 failed cycles" in mine[1].getMessage()
