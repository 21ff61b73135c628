"""Port actions and USSD of ``run --worker-process`` run by the worker child (cli/port_remote.py).

Two sim lines stand for the child's started line and the parent's copy of it; the child's
side answers over a real channel pair in this event loop (tests/process/
test_worker_child_ports.py runs the real processes).
"""

from __future__ import annotations

import pytest

from simgate.cli.child_channel import ChildAnswers, ChildChannel
from simgate.cli.port_remote import (
    LOCKED_FLAG,
    PortAnswers,
    RemotePorts,
    lock_ports,
    parse_locked,
    request_timeout,
)
from simgate.errors import Unavailable
from simgate.lines.base import Line, PortAction, UssdStatus
from simgate.lines.modem import ModemLine
from simgate.lines.sim import SimLine
from simgate.settings import ModemLineSettings, Settings, SimLineSettings
from simgate.testing.clock import FakeClock


def _line(clock: FakeClock) -> SimLine:
    return SimLine("sim", SimLineSettings(), clock)


async def test_actions_run_on_the_childs_line_and_show_on_the_parents_copy() -> None:
    clock = FakeClock()
    started, copy = _line(clock), _line(clock)
    channel = ChildChannel()
    answers = PortAnswers({"sim": started})
    child = ChildAnswers(channel.new_pair().detach(), answers)
    child.start()
    copies: dict[str, Line] = {"sim": copy}
    remote = RemotePorts(channel, copies, timeout_s=5)

    with pytest.raises(Unavailable, match="starting"):  # lines not started yet
        await remote.control_port("sim", 2, PortAction.LOCK)
    assert not started.ports()[2].locked
    answers.ready = True
    assert await remote.control_port("sim", 2, PortAction.LOCK)
    assert started.ports()[2].locked  # where the dispatcher picks ports
    assert copy.ports()[2].locked  # what the parent's listings show

    started.busy.add(1)  # only the child's line is busy on port 1
    assert (await remote.ussd("sim", 1, "*100#")).status is UssdStatus.BUSY
    reply = await remote.ussd("sim", 3, "*100#")
    assert reply.status is UssdStatus.SENT
    assert (reply.reply or "").startswith("Balance")
    assert (await remote.ussd("sim", 2, None)).status is UssdStatus.NOT_REGISTERED  # locked

    await child.stop()  # the child ended
    with pytest.raises(Unavailable, match="worker process"):
        await remote.control_port("sim", 2, PortAction.UNLOCK)
    assert copy.ports()[2].locked  # nothing done: nothing shown
    await channel.close()


def test_the_parent_waits_longer_than_the_slowest_modem_operation() -> None:
    modem = {"driver": "modem", "ports": ["/dev/null"], "send_timeout": 90, "command_timeout": 20}
    settings = Settings.model_validate({"lines": {"sim": {"driver": "sim"}, "gsm": modem}})
    assert request_timeout(settings) > 90 + 2 * 20


async def test_a_restarted_child_is_told_the_ports_shown_locked_and_locks_them() -> None:
    clock = FakeClock()
    started, copy = _line(clock), _line(clock)
    channel = ChildChannel()
    answers = PortAnswers({"sim": started})
    answers.ready = True
    child = ChildAnswers(channel.new_pair().detach(), answers)
    child.start()
    remote = RemotePorts(channel, {"sim": copy}, timeout_s=5)
    assert remote.child_args() == []
    for port in (5, 1, 2):
        assert await remote.control_port("sim", port, PortAction.LOCK)
    assert await remote.control_port("sim", 2, PortAction.UNLOCK)
    assert await remote.control_port("sim", 3, PortAction.RESET)
    assert remote.child_args() == [LOCKED_FLAG, "sim:1,sim:5"]
    await child.stop()
    await channel.close()

    fresh = _line(clock)  # the next child's line, before it starts
    lines: dict[str, Line] = {"sim": fresh}
    pairs = parse_locked("sim:1,sim:5,gone:0,sim:99,sim:x", lines)
    assert pairs == [("sim", 1), ("sim", 5)]  # what this child's settings do not know: left
    await lock_ports(pairs, lines)
    assert [p.index for p in fresh.ports() if p.locked] == [1, 5]


async def test_a_modem_lines_copy_shows_the_ports_the_child_answered() -> None:
    # A modem line's copy in the parent is not driven there: it shows stored ports (issue
    # 16), here the child's answer at once rather than at the next refresh of the stored.
    clock = FakeClock()
    cfg = ModemLineSettings(ports=["socket://127.0.0.1:9", "socket://127.0.0.1:9"])
    in_child, copy = ModemLine("gsm", cfg, clock), ModemLine("gsm", cfg, clock)
    channel = ChildChannel()
    answers = PortAnswers({"gsm": in_child})
    answers.ready = True
    child = ChildAnswers(channel.new_pair().detach(), answers)
    child.start()
    remote = RemotePorts(channel, {"gsm": copy}, timeout_s=5)
    assert await remote.control_port("gsm", 1, PortAction.LOCK)
    assert in_child.modem(1).locked
    assert [p.locked for p in copy.ports()] == [False, True]
    assert not copy.modem(1).locked  # shown, not done: the copy drives nothing
    await child.stop()
    await channel.close()
