"""Port actions and USSD of ``run --worker-process``, run by the worker child (issue 15).

The lines are started in the child only: the HTTP process's line objects are copies built
from the same settings, never started (a modem's serial port is open in the child; the sim
line's port state that the dispatcher reads is the child's). :class:`RemotePorts` is the
HTTP process's :class:`~simgate.services.lines.PortControls`: each action goes over the
child channel (cli/child_channel.py) to :class:`PortAnswers`, which runs it on the child's
started lines (services/lines.LocalPorts) and answers what the line answered. A child that is
down, restarting or still starting makes the action fail with
:class:`~simgate.errors.Unavailable`, which each caller words in its own format.

The HTTP process still answers port listings (Dinstar get_port_info, the console, and the
port a Dinstar send names) from its own copies, so an action the child took is shown there
too: a modem line's ports as the child answered them (the stored state the child also
saves, issue 16), a sim line's by doing the same action on the copy (it is deterministic and
not started: no event is recorded twice).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from simgate.cli.child_channel import ChildChannel, ChildGone
from simgate.errors import Unavailable
from simgate.lines.base import (
    Line,
    PortAction,
    PortControlLine,
    PortInfo,
    UssdResult,
    UssdStatus,
)
from simgate.services.lines import LocalPorts, StatefulPortsLine
from simgate.settings import Settings

MARGIN_S = 10.0
LOCKED_FLAG = "--locked-ports"  # hidden worker option: "line:port,line:port"


def request_timeout(settings: Settings) -> float:
    """How long the HTTP process waits for the child's answer: longer than the slowest
    port operation in one process (a modem's USSD waits for its command, up to
    ``command_timeout``, then for the network's answer as long again, and may queue behind
    an SMS being sent, up to ``send_timeout``)."""
    longest = 0.0
    for cfg in settings.lines.values():
        send = float(getattr(cfg, "send_timeout", 0.0))
        command = float(getattr(cfg, "command_timeout", 0.0))
        longest = max(longest, send + 2 * command)
    return longest + MARGIN_S


class RemotePorts:
    """The HTTP process's port actions: run by the worker child, shown on the copies here."""

    def __init__(
        self, channel: ChildChannel, lines: Mapping[str, Line], *, timeout_s: float
    ) -> None:
        self._channel = channel
        self._lines = lines
        self._timeout_s = timeout_s
        # The ports locked through us: a restarted child is told at its start (child_args)
        # so it does not send on them, as the parent's copies still show them locked.
        self.locked: set[tuple[str, int]] = set()

    def child_args(self) -> list[str]:
        """The worker child's options for the ports locked now (cli/worker_child.py)."""
        if not self.locked:
            return []
        return [LOCKED_FLAG, ",".join(f"{line}:{port}" for line, port in sorted(self.locked))]

    async def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = await self._channel.ask(request, self._timeout_s)
        except ChildGone as exc:
            raise Unavailable(f"the worker process is not running ({exc}): try again") from None
        except TimeoutError:
            raise Unavailable(
                f"the worker process did not answer in {self._timeout_s:.0f} s"
            ) from None
        if answer.get("error") == "unavailable":
            raise Unavailable(str(answer.get("text", "the worker process is starting")))
        if "error" in answer:  # what the line raised in the child (one process: the same)
            raise RuntimeError(f"the worker process: {answer.get('text', '')}")
        return answer

    async def control_port(self, line: str, port: int, action: PortAction) -> bool:
        answer = await self._ask(
            {"op": "control", "line": line, "port": port, "action": action.value}
        )
        ok = bool(answer["ok"])
        if ok:
            await self._show(line, port, action, answer.get("ports", []))
            if action is PortAction.LOCK:
                self.locked.add((line, port))
            elif action is PortAction.UNLOCK:
                self.locked.discard((line, port))
        return ok

    async def _show(self, line: str, port: int, action: PortAction, ports: list[Any]) -> None:
        copy = self._lines[line]
        if isinstance(copy, StatefulPortsLine) and not copy.driven_here:
            copy.show_stored([PortInfo(**p) for p in ports])
        elif isinstance(copy, PortControlLine):
            await copy.control_port(port, action)

    async def ussd(self, line: str, port: int, text: str | None) -> UssdResult:
        answer = await self._ask({"op": "ussd", "line": line, "port": port, "text": text})
        reply = answer.get("reply")
        return UssdResult(UssdStatus(answer["status"]), reply if isinstance(reply, str) else None)


class PortAnswers:
    """The worker child's side: runs the parent's port requests on the started lines."""

    def __init__(self, lines: Mapping[str, Line]) -> None:
        self._lines = lines
        self._local = LocalPorts(lines)
        self.ready = False  # set once start_worker() has started the lines

    async def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        if not self.ready:
            return {"error": "unavailable", "text": "the worker process is starting: try again"}
        op, line, port = request.get("op"), str(request["line"]), int(request["port"])
        if op == "control":
            ok = await self._local.control_port(line, port, PortAction(request["action"]))
            ports = [dataclasses.asdict(p) for p in self._lines[line].ports()]
            return {"ok": ok, "ports": ports}
        if op == "ussd":
            text = request.get("text")
            r = await self._local.ussd(line, port, text if isinstance(text, str) else None)
            return {"status": r.status.value, "reply": r.reply}
        return {"error": "failed", "text": f"unknown request {op!r}"}


def parse_locked(value: str, lines: Mapping[str, Line]) -> list[tuple[str, int]]:
    """``--locked-ports``: the (line, port) pairs that exist among ``lines``."""
    out: list[tuple[str, int]] = []
    for item in filter(None, value.split(",")):
        line, _, port = item.rpartition(":")
        if line in lines and port.isdigit() and int(port) < len(lines[line].ports()):
            out.append((line, int(port)))
    return out


async def lock_ports(pairs: list[tuple[str, int]], lines: Mapping[str, Line]) -> None:
    """In a restarted worker child, before its lines start: the ports the parent shows
    locked are locked here too (a lock lives in the line's memory only)."""
    local = LocalPorts(lines)
    for line, port in pairs:
        if isinstance(lines[line], PortControlLine):
            await local.control_port(line, port, PortAction.LOCK)
