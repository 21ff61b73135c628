"""The modem line against FakeModems over a pty and TCP: sending with TP-MRs, reports inline
and stored, before and after the +CMGS answer, incoming whole and in parts, USSD, port
state, PIN, CMS errors, a hung or unplugged modem, a port in use, and the journal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import serialx
from gsmmodem import pdu as oracle

from simgate.clock import SystemClock
from simgate.codecs.text import join_parts
from simgate.lines.base import Outcome, PortAction, UssdStatus
from simgate.lines.modem import ModemLine
from simgate.testing.fake_modem import FakeModem
from simgate.testing.lines import RecordingSink
from tests.lines.modem.conftest import Rig, request, until

Factory = Callable[..., Any]
LONG = "This message is long enough to need two parts when sent as GSM-7. " * 3


async def test_ports_show_the_modems_state(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=1, tcp=1)
    await rig.ready()
    p0, p1 = rig.line.ports()
    assert (p0.imsi, p1.imsi) == ("460000000000000", "460000000000001")
    assert p0.imei == "356938035643809"
    assert p0.iccid == "89860012345678901234"
    assert (p0.number, p0.operator, p0.signal, p0.reg) == (
        "+15550001111",
        "FAKENET",
        23,
        "REGISTER_OK",
    )
    assert ("gsm", 0, True) in rig.sink.port_changes


@pytest.mark.parametrize("reports", ["inline", "stored"])
@pytest.mark.parametrize("report_first", [False, True])
async def test_long_message_parts_and_reports(
    rig_factory: Factory, reports: str, report_first: bool
) -> None:
    rig: Rig = await rig_factory(pty=1, tcp=1)
    for m in rig.modems:
        m.behaviour.reports, m.behaviour.report_first = reports, report_first
    await rig.ready()
    for port in (0, 1):
        result = await rig.line.submit(request(10 + port, LONG, port=port))
        assert result.outcome is Outcome.OK
        assert len(result.part_refs) == 4 - 2  # two parts
        assert result.first_ref == 0  # the modem's first TP-MR
    await until(lambda: len(rig.sink.reports) == 4)
    got = {r.line_ref: r for _, r in rig.sink.reports}
    assert all(r.status_code == 0 for r in got.values())
    hints = sorted((r.hint.message_id, r.hint.part) for r in got.values() if r.hint)
    assert hints == [(10, 1), (10, 2), (11, 1), (11, 2)]
    # Every part's PDU decodes right with an independent decoder.
    for modem in rig.modems:
        texts = [oracle.decodeSmsPdu(h)["text"] for h in modem.submits]
        assert "".join(texts) == LONG
    if reports == "stored":
        await until(lambda: all(not m._store for m in rig.modems))  # read, then deleted


async def test_ucs2_message(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=1, tcp=0)
    await rig.ready()
    result = await rig.line.submit(request(1, "Привет, мир! 你好", port=0))
    assert result.outcome is Outcome.OK
    decoded = oracle.decodeSmsPdu(rig.modems[0].submits[0])
    assert decoded["text"] == "Привет, мир! 你好"


async def test_incoming_whole_parts_stored_and_ucs2(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=0, tcp=1)
    await rig.ready()
    m = rig.modems[0]
    m.deliver(sender="+4915112345678", text="hello")
    m.deliver(sender="+4915112345678", text="Grüße 😀", stored=True)
    total = m.deliver(sender="+4915112345678", text=LONG, order=[1, 0])
    await until(lambda: len(rig.sink.incoming_sms) == 2 and len(rig.sink.parts) == total)
    texts = {sms.text for _, sms in rig.sink.incoming_sms}
    assert texts == {"hello", "Grüße 😀"}
    seqs = [p.seq for _, p in rig.sink.parts]
    assert seqs == [2, 1]
    assert {p.recipient for _, p in rig.sink.parts} == {"+15550001111"}
    ordered = sorted((p for _, p in rig.sink.parts), key=lambda p: p.seq)
    assert join_parts([(p.data_coding, p.data) for p in ordered]) == LONG
    await until(lambda: not m._store)


async def test_ussd_gsm7_and_ucs2(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=1, tcp=1)
    rig.modems[1].behaviour.ussd_ucs2 = True
    await rig.ready()
    for port in (0, 1):
        r = await rig.line.send_ussd(port, "*100#")
        assert r.status is UssdStatus.SENT
        assert r.reply == "Balance for *100#: 12.34 USD"


async def test_wrong_pin_stops_that_port_only(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=1, tcp=1, pin="1234")
    rig.modems[0].wrong_pin("0000")
    await until(lambda: rig.line.ports()[1].usable and rig.line.ports()[0].reg == "PIN_REQUIRE")
    await asyncio.sleep(0.3)  # several poll rounds: the PIN is not tried again
    pins = [c for c in rig.modems[0].commands if c.startswith("AT+CPIN=")]
    assert pins == ['AT+CPIN="1234"']
    assert not rig.line.ports()[0].usable
    r = await rig.line.submit(request(1, "hi", port=0))
    assert r.outcome is Outcome.RETRY


async def test_cms_errors_block_reset_and_recover(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=0, tcp=1, fail_limit=3)
    await rig.ready()
    m = rig.modems[0]
    m.cms_errors(500, times=3)
    outcomes = [(await rig.line.submit(request(i, "hi"))).outcome for i in range(3)]
    assert outcomes == [Outcome.RETRY] * 3
    assert rig.line.ports()[0].blocked
    await until(lambda: m.resets == 1)
    await rig.ready()
    assert (await rig.line.submit(request(9, "again"))).outcome is Outcome.OK
    assert len(m.submits) == 1  # nothing doubled


async def test_permanent_cms_error_rejects(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=0, tcp=1)
    await rig.ready()
    rig.modems[0].cms_errors(0xC3, times=1)  # invalid SME address
    r = await rig.line.submit(request(1, "hi"))
    assert (r.outcome, r.error_code) == (Outcome.REJECTED, 0xC3)
    assert rig.line.modem(0).failures == 0


async def test_hung_before_the_prompt_retries_the_message(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=0, tcp=1, send_timeout=0.3)
    await rig.ready()
    m = rig.modems[0]
    m.stops_answering()
    r = await rig.line.submit(request(1, "hi"))
    assert r.outcome is Outcome.RETRY  # no "> ": the PDU never left, sending again is safe
    await until(lambda: not m.behaviour.silent)  # reconnected: the modem came back
    await rig.ready()
    assert (await rig.line.submit(request(2, "hi"))).outcome is Outcome.OK


async def test_no_answer_after_the_pdu_is_unknown(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=1, tcp=0, send_timeout=0.3)
    await rig.ready()
    rig.modems[0].slow(1.0)  # the PDU is written, the network's answer comes too late
    r = await rig.line.submit(request(1, "hi"))
    assert r.outcome is Outcome.UNKNOWN  # it may have left: never resent
    rig.modems[0].slow(0)
    await rig.ready()
    assert (await rig.line.submit(request(2, "hi"))).outcome is Outcome.OK


async def test_unplugged_modem_comes_back(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=0, tcp=1)
    await rig.ready()
    rig.modems[0].drops_line()
    await until(lambda: ("gsm", 0, False) in rig.sink.port_changes)
    await rig.ready()
    assert rig.sink.port_changes.count(("gsm", 0, True)) == 2
    assert (await rig.line.submit(request(2, "hi"))).outcome is Outcome.OK


async def test_port_in_use_is_named(rig_factory: Factory) -> None:
    modem = FakeModem()
    path = await modem.open_pty()
    _, writer = await serialx.open_serial_connection(path, baudrate=115200, exclusive=True)
    try:
        rig: Rig = await rig_factory(pty=0, tcp=1)
        line = ModemLine(
            "busy", rig.cfg.model_copy(update={"ports": [path], "journal": None}), SystemClock()
        )
        await line.start(RecordingSink())
        try:
            await until(lambda: "in use by another program" in line.modem(0).last_error)
            assert path in line.modem(0).last_error
        finally:
            await line.stop()
    finally:
        writer.close()
        await modem.close()


async def test_lock_and_reset_actions(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=1, tcp=0)
    await rig.ready()
    assert await rig.line.control_port(0, PortAction.LOCK)
    assert not rig.line.ports()[0].usable
    assert await rig.line.control_port(0, PortAction.UNLOCK)
    assert await rig.line.control_port(0, PortAction.RESET)
    await until(lambda: rig.modems[0].resets == 1)
    await rig.ready()


async def test_report_after_a_restart_finds_its_message(
    rig_factory: Factory, tmp_path: Path
) -> None:
    journal = str(tmp_path / "restart.mr")
    rig: Rig = await rig_factory(pty=0, tcp=1, journal=journal)
    m = rig.modems[0]
    m.behaviour.reports = "stored"
    m.holds_reports()
    await rig.ready()
    r = await rig.line.submit(request(77, "hi", to="+4917099999999"))
    assert r.outcome is Outcome.OK
    await rig.line.stop()  # simgate goes away before the report
    m.release_reports()
    assert m._store  # the report waits in the modem's memory
    again: Rig = await rig_factory(pty=0, tcp=1, journal=journal)
    again.modems[0]._store.update(m._store)  # the same modem, found again after the restart
    index = next(iter(m._store))
    await again.ready()
    again.modems[0]._answer(f'+CDSI: "SM",{index}')
    await until(lambda: len(again.sink.reports) == 1)
    ((_, report),) = again.sink.reports
    assert report.hint is not None
    assert report.hint.message_id == 77
    assert report.line_ref == r.part_refs[0]


async def test_huawei_noise_between_answers(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=1, tcp=0)
    rig.modems[0].behaviour.huawei_noise = True
    await rig.ready()
    result = await rig.line.submit(request(1, LONG))
    assert result.outcome is Outcome.OK
    await until(lambda: len(rig.sink.reports) == 2)
    assert rig.line.ports()[0].signal == 23  # ^RSSI chatter did not stand in for +CSQ


@pytest.mark.parametrize(("pty", "tcp"), [(1, 0), (0, 1)])
async def test_a_report_settles_a_part_whose_answer_went_with_the_line(
    rig_factory: Factory, pty: int, tcp: int
) -> None:
    rig: Rig = await rig_factory(pty=pty, tcp=tcp, send_timeout=0.3)
    await rig.ready()
    assert (await rig.line.submit(request(1, "first"))).outcome is Outcome.OK
    await until(lambda: len(rig.sink.reports) == 1)
    rig.modems[0].loses_answers(times=1)
    r = await rig.line.submit(request(2, "lost answer"))
    assert r.outcome is Outcome.UNKNOWN  # it may have left: never resent
    # Back: the report waiting in the modem's storage is swept and settles message 2.
    await until(lambda: len(rig.sink.reports) == 2, within=20)
    hint = rig.sink.reports[1][1].hint
    assert hint is not None
    assert (hint.message_id, hint.part, hint.parts) == (2, 1, 1)
    await rig.ready()
    assert (await rig.line.submit(request(3, "after"))).outcome is Outcome.OK
    await until(lambda: len(rig.sink.reports) == 3)
    assert len(rig.modems[0].submits) == 3  # nothing sent twice
