"""Lines and ports: each port's SIM and radio state, the line's rates, and the port actions
the line supports (lines.base.PortControlLine: reset, lock, unlock)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from simgate.console.context import PREFIX, Console
from simgate.console.security import Refused, require_admin, require_operator
from simgate.errors import Unavailable
from simgate.lines.base import Capability, PortAction, PortControlLine

# What the console offers; power on/off stay with the Dinstar API and the CLI.
ACTIONS = {a.value: a for a in (PortAction.RESET, PortAction.LOCK, PortAction.UNLOCK)}


def add_routes(router: APIRouter, console: Console) -> None:
    @router.get("/lines")
    async def lines(request: Request) -> Response:
        session = await console.session(request)
        require_operator(session)
        views = await console.services.console.lines(tz=session.user.timezone)
        return console.render(
            request, session, "lines.html", lines=views, actions=ACTIONS, title="Lines and ports"
        )

    @router.post("/lines/{line}/ports/{port}/{action}")
    async def control(request: Request, line: str, port: int, action: str) -> Response:
        session, _ = await console.acting(request)
        require_operator(session)
        require_admin(session)
        target = console.services.lines.get(line)
        chosen = ACTIONS.get(action)
        if target is None or chosen is None or not any(p.index == port for p in target.ports()):
            raise Refused(404, "no such line, port or action")
        if Capability.PORT_CONTROL not in target.capabilities or not isinstance(
            target, PortControlLine
        ):
            raise Refused(409, f"line {line} cannot {action} its ports")
        try:  # where the line runs: here, or the worker child of `run --worker-process`
            done = await console.services.line_state.control_port(line, port, chosen)
        except Unavailable as exc:
            raise Refused(503, str(exc)) from None
        if not done:
            raise Refused(409, f"port {port} of {line} refused to {action}")
        return RedirectResponse(f"{PREFIX}/lines", status_code=303)
