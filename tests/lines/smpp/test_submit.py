"""SmppLine.submit against FakeSmsc: encodings, long messages, outcomes, window."""

from __future__ import annotations

import asyncio

from simgate.codecs.segments import Encoding
from simgate.codecs.smpp import CommandStatus, EsmClass, normalize_message_id
from simgate.codecs.ucs2 import decode_ucs2
from simgate.codecs.udh import parse_udh
from simgate.lines.base import Capability, Outcome
from simgate.testing.smsc import FakeSmsc

from .support import eventually, request, started_line

LONG_UCS2 = "Привет, мир! " * 12  # 156 UTF-16 units: 3 parts of ≤ 67


async def test_single_gsm7_part_refs_are_normalised_smsc_ids() -> None:
    async with FakeSmsc() as smsc, started_line(smsc.port) as (line, _):
        result = await line.submit(request("hello {world}", sender="SimGate"))
    assert result.outcome is Outcome.OK
    assert list(result.part_refs) == [normalize_message_id(i) for i in smsc.accepted]
    pdu = smsc.submits[0]
    assert (pdu.source_addr_ton, pdu.source_addr_npi, pdu.source_addr) == (5, 0, "SimGate")
    assert (pdu.dest_addr_ton, pdu.dest_addr_npi) == (1, 1)
    assert pdu.data_coding == 0
    assert pdu.registered_delivery == 1
    assert pdu.esm_class == 0
    assert pdu.short_message == b"hello \x1b(world\x1b)"  # GSM-7 septets, escapes for {}


async def test_sender_shapes_choose_ton_npi() -> None:
    async with FakeSmsc() as smsc, started_line(smsc.port) as (line, _):
        for sender in ("12345", "+447700900123", "447700900123"):
            assert (await line.submit(request(sender=sender, report=False))).outcome is Outcome.OK
    got = [(p.source_addr_ton, p.source_addr_npi, p.source_addr) for p in smsc.submits]
    assert got == [(3, 0, "12345"), (1, 1, "447700900123"), (1, 1, "447700900123")]
    assert all(p.registered_delivery == 0 for p in smsc.submits)


async def test_long_ucs2_goes_as_udh_parts_with_one_reference() -> None:
    async with FakeSmsc() as smsc, started_line(smsc.port) as (line, _):
        result = await line.submit(request(LONG_UCS2))
    assert result.outcome is Outcome.OK
    assert len(result.part_refs) == 3
    infos = []
    text = ""
    for pdu in smsc.submits:
        assert pdu.esm_class & EsmClass.UDHI
        assert pdu.data_coding == 8
        info, body = parse_udh(pdu.short_message)
        assert info is not None
        infos.append((info.ref, info.total, info.seq))
        text += decode_ucs2(body)
    assert sorted(infos) == [(result.first_ref, 3, s) for s in (1, 2, 3)]
    assert text == LONG_UCS2


async def test_long_message_as_sar_tlvs() -> None:
    async with FakeSmsc() as smsc, started_line(smsc.port, long_messages="sar") as (line, _):
        result = await line.submit(request("a" * 200))
    assert result.outcome is Outcome.OK
    assert len(result.part_refs) == 2
    seen = sorted(
        (p.tlvs.sar_msg_ref_num, p.tlvs.sar_total_segments, p.tlvs.sar_segment_seqnum)
        for p in smsc.submits
    )
    assert seen == [(result.first_ref, 2, 1), (result.first_ref, 2, 2)]
    assert all(p.esm_class == 0 for p in smsc.submits)
    assert (
        b"".join(
            p.short_message
            for p in sorted(smsc.submits, key=lambda p: p.tlvs.sar_segment_seqnum or 0)
        )
        == b"a" * 200
    )


async def test_long_message_as_payload_counts_every_part() -> None:
    async with FakeSmsc() as smsc, started_line(smsc.port, long_messages="payload") as (line, _):
        result = await line.submit(request("b" * 200))
    assert len(smsc.submits) == 1
    assert smsc.submits[0].tlvs.message_payload == b"b" * 200
    (sid,) = smsc.accepted
    assert result.part_refs == (normalize_message_id(sid),) * 2  # one id, both parts


async def test_latin1_is_data_coding_3() -> None:
    async with FakeSmsc() as smsc, started_line(smsc.port) as (line, _):
        result = await line.submit(request("café", encoding=Encoding.LATIN1))
    assert result.outcome is Outcome.OK
    assert smsc.submits[0].data_coding == 3
    assert smsc.submits[0].short_message == "café".encode("latin-1")


async def test_throttled_line_pauses_and_asks_for_retry() -> None:
    async with (
        FakeSmsc.throttles(after=2) as smsc,
        started_line(smsc.port, throttle_pause=0.2) as (line, _),
    ):
        results = [await line.submit(request(report=False)) for _ in range(3)]
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK, Outcome.RETRY]
    assert results[2].retry_after_s == 0.2
    assert results[2].error_code == CommandStatus.ESME_RTHROTTLED
    assert line._paused_until > 0


async def test_queue_full_is_throttling_too() -> None:
    async with (
        FakeSmsc.answers(CommandStatus.ESME_RMSGQFUL) as smsc,
        started_line(smsc.port) as (line, _),
    ):
        result = await line.submit(request())
    assert result.outcome is Outcome.RETRY
    assert result.retry_after_s is not None


async def test_errors_map_to_retry_or_rejected() -> None:
    async with (
        FakeSmsc.answers(CommandStatus.ESME_RINVDSTADR) as smsc,
        started_line(smsc.port) as (line, _),
    ):
        bad = await line.submit(request())
    assert bad.outcome is Outcome.REJECTED
    assert bad.error_code == CommandStatus.ESME_RINVDSTADR
    assert bad.error_text == "ESME_RINVDSTADR"
    async with (
        FakeSmsc.answers(CommandStatus.ESME_RSYSERR) as smsc,
        started_line(smsc.port) as (line, _),
    ):
        busy = await line.submit(request())
    assert busy.outcome is Outcome.RETRY
    assert busy.retry_after_s is None
    async with (
        FakeSmsc.answers(0x400) as smsc,
        started_line(smsc.port, extra_retryable=(0x400,)) as (line, _),
    ):
        vendor = await line.submit(request())
    assert vendor.outcome is Outcome.RETRY


async def test_no_answer_is_unknown_and_not_resent() -> None:
    async with (
        FakeSmsc.silent() as smsc,
        started_line(smsc.port, response_timeout=0.3) as (line, _),
    ):
        result = await line.submit(request())
    assert result.outcome is Outcome.UNKNOWN
    assert len(smsc.submits) == 1


async def test_drop_mid_window_makes_in_flight_unknown_then_reconnects() -> None:
    async with FakeSmsc.drops_after(2) as smsc, started_line(smsc.port) as (line, _):
        first = await asyncio.gather(*(line.submit(request(report=False)) for _ in range(5)))
        outcomes = [r.outcome for r in first]
        after = await line.submit(request(report=False))
    assert outcomes.count(Outcome.OK) == 2
    assert outcomes.count(Outcome.UNKNOWN) == 3
    assert after.outcome is Outcome.OK
    assert smsc.binds == 2  # reconnected once
    ok_refs = {ref for r in [*first, after] for ref in r.part_refs}
    assert ok_refs == {normalize_message_id(i) for i in smsc.accepted}


async def test_window_limits_outstanding_submits() -> None:
    async with (
        FakeSmsc.silent() as smsc,
        started_line(smsc.port, window=2, response_timeout=0.5) as (line, _),
    ):
        tasks = [asyncio.create_task(line.submit(request())) for _ in range(3)]
        await eventually(lambda: len(smsc.submits) == 2)
        await asyncio.sleep(0.1)
        assert len(smsc.submits) == 2
        assert line.binds[0].inflight == 2
        results = await asyncio.gather(*tasks)
    assert [r.outcome for r in results] == [Outcome.UNKNOWN] * 3
    assert len(smsc.submits) == 3


async def test_no_smsc_means_retry_without_sending() -> None:
    smsc = FakeSmsc()
    port = await smsc.start()
    await smsc.stop()  # nobody listens on the port any more
    async with started_line(port, bind_wait=0.2) as (line, _):
        assert not line.ports()[0].registered
        result = await line.submit(request())
    assert result.outcome is Outcome.RETRY
    assert "no SMPP bind" in (result.error_text or "")


async def test_later_part_throttled_is_retried_in_place() -> None:
    async with FakeSmsc.throttles(after=1, times=1) as smsc, started_line(smsc.port) as (line, _):
        result = await line.submit(request("c" * 200, report=False))
    assert result.outcome is Outcome.OK
    assert len(result.part_refs) == 2
    assert len(smsc.submits) == 3
    assert len(smsc.accepted) == 2


async def test_later_part_refused_gets_a_failed_report() -> None:
    def script(i: int, pdu: object) -> int:
        return CommandStatus.ESME_RINVDSTADR if i == 1 else 0

    async with FakeSmsc(status_for=script) as smsc, started_line(smsc.port) as (line, sink):
        result = await line.submit(request("d" * 200))
        await eventually(lambda: bool(sink.reports))
    assert result.outcome is Outcome.OK
    assert len(result.part_refs) == 2
    failed = [r for r in sink.reports if r.line_ref == result.part_refs[1]]
    assert failed
    assert failed[0].status_code == CommandStatus.ESME_RINVDSTADR


async def test_several_binds_share_the_load_and_port_state_follows() -> None:
    async with (
        FakeSmsc() as smsc,
        started_line(smsc.port, transceivers=2, window=1) as (line, sink),
    ):
        await eventually(lambda: all(b.bound for b in line.binds))
        results = await asyncio.gather(*(line.submit(request(report=False)) for _ in range(6)))
        assert line.ports()[0].registered
        smsc.drop_all()
        await eventually(lambda: (0, False) in sink.ports)
    assert all(r.outcome is Outcome.OK for r in results)
    assert smsc.binds >= 2
    assert len({c.index for c in smsc.conns}) >= 2
    assert sink.ports[0] == (0, True)


async def test_unencodable_text_is_rejected() -> None:
    async with FakeSmsc() as smsc, started_line(smsc.port) as (line, _):
        result = await line.submit(request("Привет", encoding=Encoding.GSM7))
    assert result.outcome is Outcome.REJECTED
    assert not smsc.submits


async def test_the_line_marks_a_message_just_before_its_first_part_is_written() -> None:
    """WRITE_MARKS (issue 14 item 3): the worker's journal learns of a message when it may
    leave, not when the submit is called: one waiting for a bind is not marked, so a crash
    then puts it back in the queue instead of making it UNKNOWN."""
    marked: list[int] = []
    smsc = FakeSmsc()
    port = await smsc.start()
    await smsc.stop()
    async with started_line(port, bind_wait=0.2) as (line, _):
        assert Capability.WRITE_MARKS in line.capabilities
        waited = await line.submit(request()._replace(on_write=marked.append))
    assert waited.outcome is Outcome.RETRY
    assert marked == []  # never written
    async with FakeSmsc() as smsc, started_line(smsc.port) as (line, _):
        req = request("c" * 200)._replace(on_write=marked.append)
        assert (await line.submit(req)).outcome is Outcome.OK
    assert marked == [req.message_id]  # once, for its first part
