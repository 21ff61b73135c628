"""One modem port over TCP: the start-up sequence, identity, a refused +CNMI, and inline
delivery acknowledged with +CNMA once committed (+CSMS=1), stored delivery without it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from simgate.lines.base import IncomingSms, PortAction
from simgate.lines.modem.port import CNMA_ACK, CNMI_INLINE, CNMI_STORED, CSMS_PHASE2
from simgate.testing.lines import RecordingSink
from tests.lines.modem.conftest import Rig, request, until

Factory = Callable[..., Any]


async def test_start_up_sequence(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=0, tcp=1)
    await rig.ready()
    cmds = rig.modems[0].commands
    start = cmds.index("ATE0")
    assert cmds[start : start + 6] == [
        "ATE0",
        "AT+CMEE=1",
        "AT+CMGF=0",
        "AT+CPIN?",
        CSMS_PHASE2,
        CNMI_INLINE,
    ]
    for ask in ("AT+CGSN", "AT+CIMI", "AT+CRSM=176,12258,0,0,10", "AT+CNUM", "AT+CSQ", "AT+CREG?"):
        assert ask in cmds
    assert CNMI_STORED not in cmds


async def test_a_modem_without_inline_reports_gets_stored_ones(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=1, tcp=0)
    await rig.ready()
    rig.modems[0].behaviour.refuses_inline = True
    await rig.line.control_port(0, PortAction.RESET)
    await until(lambda: rig.modems[0].resets == 1)
    await rig.ready()
    assert CNMI_STORED in rig.modems[0].commands


class FailsOnce(RecordingSink):
    """A sink whose first commit of an incoming SMS fails (the database away)."""

    failed = False

    async def incoming(self, line: str, messages: Sequence[IncomingSms]) -> None:
        if not self.failed:
            self.failed = True
            raise OSError("database away")
        await super().incoming(line, messages)


async def test_inline_sms_is_acknowledged_only_once_committed(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=0, tcp=1, sink=FailsOnce())
    await rig.ready()
    m = rig.modems[0]
    m.redelivers_unacked(after=0.2)
    m.deliver(sender="+4917011111111", text="hello")
    # The first +CMT failed in the sink: not acknowledged, so the modem delivered it again.
    await until(lambda: len(rig.sink.incoming_sms) == 1 and not m.unacked)
    assert isinstance(rig.sink, FailsOnce)
    assert rig.sink.failed
    assert rig.sink.incoming_sms[0][1].text == "hello"
    assert m.commands.count(CNMA_ACK) == 1


async def test_reports_inline_are_acknowledged(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=1, tcp=0)
    await rig.ready()
    m = rig.modems[0]
    await rig.line.submit(request(1, "hi"))
    await until(lambda: len(rig.sink.reports) == 1 and not m.unacked)
    assert CNMA_ACK in m.commands


async def test_without_phase_2_plus_delivery_is_stored(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=1, tcp=0)
    await rig.ready()
    m = rig.modems[0]
    m.behaviour.phase2 = False
    await rig.line.control_port(0, PortAction.RESET)
    await until(lambda: m.resets == 1)
    await rig.ready()
    after_reset = m.commands[m.commands.index("AT+CFUN=1,1") :]
    assert CNMI_STORED in after_reset
    assert CNMI_INLINE not in after_reset  # an inline SMS the modem acks itself: never
    m.deliver(sender="+4917011111111", text="stored")
    await until(lambda: len(rig.sink.incoming_sms) == 1 and not m._store)  # read, deleted
    assert CNMA_ACK not in after_reset
