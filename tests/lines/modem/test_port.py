"""One modem port over TCP: the start-up sequence, identity, and a refused +CNMI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simgate.lines.base import PortAction
from simgate.lines.modem.port import CNMI_INLINE, CNMI_STORED
from tests.lines.modem.conftest import Rig, until

Factory = Callable[..., Any]


async def test_start_up_sequence(rig_factory: Factory) -> None:
    rig: Rig = await rig_factory(pty=0, tcp=1)
    await rig.ready()
    cmds = rig.modems[0].commands
    start = cmds.index("ATE0")
    assert cmds[start : start + 5] == ["ATE0", "AT+CMEE=1", "AT+CMGF=0", "AT+CPIN?", CNMI_INLINE]
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
