"""Port and USSD endpoints: get_port_info, set_port_info, send_ussd, query_ussd_reply
(spec §2.7, §2.8). Ports are read from the lines this process knows; USSD and port actions
run where the lines are started (services/lines.LineService: here in ``run``, in the worker
child in ``run --worker-process``; a child down or restarting answers "500 other errors"
saying so). A port whose line cannot carry USSD answers 503 for that port.

Ports are the operator's (issue 14 item 1): set_port_info is for operators; an account user
lists, asks USSD on and reads USSD replies of the ports it may use only (its account's and
the shared ones), sees SIM ids of its account's ports only, and sees the USSD replies its
own account asked for."""

from __future__ import annotations

import hashlib
from typing import Any

from simgate.api.dialects.dinstar import envelope as env
from simgate.api.dialects.dinstar.context import Call, Gateway, operator_only
from simgate.api.dialects.dinstar.ports import GatewayPort
from simgate.errors import InvalidInput, ServiceError
from simgate.lines.base import (
    Capability,
    PortAction,
    PortControlLine,
    PortInfo,
    UssdLine,
    UssdStatus,
)

MAX_PORT = 255
USSD_MAX_BYTES = 60  # spec §2.7
NOTHING_YET = " "  # query_ussd_reply's "no reply" (spec §2.7)

# info_type → value; spellings differ between the wiki and clients (spec §2.8): both accepted.
CREDIT_TYPES = (
    "remain_credit",
    "remain_monthly_credit",
    "remain_daily_credit",
    "remain_daily_call_time",
    "remain_daily_calltime",
    "remain_hourly_call_time",
    "remain_hourly_calltime",
    "remain_daily_connected",
    "remain_daily_connect",
)
INFO_TYPES = (
    "type",
    "imei",
    "imsi",
    "iccid",
    "number",
    "reg",
    "slot",
    "callstate",
    "signal",
    "gprs",
    *CREDIT_TYPES,
)
DEFAULT_TYPES = INFO_TYPES[:10]
SIM_IDS = frozenset({"imsi", "iccid", "number"})  # the operator's, and the port's own account
USSD_STATUS = {UssdStatus.SENT: 200, UssdStatus.BUSY: 486, UssdStatus.NOT_REGISTERED: 503}
# set_port_info actions (spec §2.8) → what a line can do; the rest exist but are unsupported.
ACTIONS: dict[tuple[str, str], PortAction] = {
    ("reset", ""): PortAction.RESET,
    ("power", "on"): PortAction.POWER_ON,
    ("power", "off"): PortAction.POWER_OFF,
    ("lock", ""): PortAction.LOCK,
    ("unlock", ""): PortAction.UNLOCK,
    ("block", ""): PortAction.LOCK,
    ("unblock", ""): PortAction.UNLOCK,
}
UNSUPPORTED = frozenset({"slot", "imei", "number", "callforward", "checkcallforward"})


class NotSupported(ServiceError):
    """A known action this line cannot perform (envelope 500 "other errors")."""


def imei(line: str, index: int) -> str:
    """A stable 15-digit IMEI-shaped module id (lines do not report one)."""
    digits = str(int(hashlib.blake2b(f"{line}:{index}".encode(), digest_size=8).hexdigest(), 16))
    body = ("35" + digits)[:14]
    total = sum(
        sum(divmod(int(d) * (2 if i % 2 else 1), 10)) for i, d in enumerate(body)
    )  # Luhn check digit, as real IMEIs carry (3GPP TS 23.003 §6.2.1)
    return body + str((10 - total % 10) % 10)


def port_field(name: str, gp: GatewayPort, info: PortInfo) -> Any:
    if name == "type":
        return "GSM"
    if name == "imei":
        return info.imei or imei(gp.line, gp.index)  # a modem's own, else a stable made-up one
    if name in ("imsi", "iccid", "number"):
        return str(getattr(info, name))
    if name == "reg":
        if info.reg:  # a modem line knows the state by name (PIN_REQUIRE, SEARCHING_NETWORK..)
            return info.reg
        if not info.imsi:
            return "NO_SIM"
        return "REGISTER_OK" if info.registered else "UNREGISTER"
    if name == "slot":
        return 255  # not multi-SIM
    if name == "callstate":
        return "Idle"
    if name == "signal":
        return info.signal if info.registered else 0
    if name == "gprs":
        return "detached"
    return ""  # credits: unknown to simgate (the operator's counters)


def _ports(g: Gateway, call: Call, *, required: bool) -> list[GatewayPort]:
    numbers = env.read_int_list(call.params, "port", lo=0, hi=MAX_PORT)
    if numbers is None and required:
        raise InvalidInput("port is required")
    for n in numbers or ():
        if g.ports.get(n) is None:
            raise InvalidInput(f"port {n} does not exist (0..{len(g.ports) - 1})")
    usable = g.usable_ports(call, numbers)  # AccessDenied for another account's port
    return list(g.ports.ports) if usable is None else usable


async def get_port_info(g: Gateway, call: Call) -> tuple[int, dict[str, Any]]:
    raw = env.read_str(call.params, "info_type", max_bytes=1024)
    asked = [t.strip() for t in raw.split(",") if t.strip()] if raw else list(DEFAULT_TYPES)
    # spec Amendments: "port" is accepted (every item carries its port anyway) and unknown
    # types are left out rather than refused (a PHP library asks for "port,..." by default).
    types = [t for t in dict.fromkeys(asked) if t in INFO_TYPES]
    info: list[dict[str, Any]] = []
    for gp in _ports(g, call, required=False):
        p = g.ports.info(gp)
        if p is None:
            continue
        item: dict[str, Any] = {"port": gp.number}
        item.update({t: port_field(t, gp, p) for t in types})
        if not g.sees_sim(call, gp):
            item.update({t: "" for t in types if t in SIM_IDS})
        info.append(item)
    return env.OK, {"info": info}


async def set_port_info(g: Gateway, call: Call) -> tuple[int, dict[str, Any]]:
    operator_only(call, "set_port_info")  # one account must not stop the others' ports
    ports = _ports(g, call, required=True)
    action = (env.read_str(call.params, "action", required=True, max_bytes=32) or "").strip()
    param = (env.read_str(call.params, "param", max_bytes=64) or "").strip().lower()
    if action.lower() in UNSUPPORTED:
        raise NotSupported(f"action {action} is not supported by simgate lines")
    todo = ACTIONS.get((action.lower(), param if action.lower() == "power" else ""))
    if todo is None:
        raise InvalidInput(f"unknown action {action!r} (param {param!r})")
    for gp in ports:
        line = g.ports.line(gp.line)
        if Capability.PORT_CONTROL not in line.capabilities or not isinstance(
            line, PortControlLine
        ):
            raise NotSupported(f"line {gp.line} cannot {action} its ports")
        await g.services.line_state.control_port(gp.line, gp.index, todo)
    return env.OK, {}


async def send_ussd(g: Gateway, call: Call) -> tuple[int, dict[str, Any]]:
    command = env.read_str(call.params, "command", max_bytes=16) or "send"
    if command not in ("send", "cancel"):
        raise InvalidInput('command must be "send" or "cancel"')
    text = env.read_str(call.params, "text", max_bytes=USSD_MAX_BYTES)
    if command == "send" and not text:
        raise InvalidInput("text is required to send USSD")
    result = []
    for gp in _ports(g, call, required=True):
        line = g.ports.line(gp.line)
        if Capability.USSD not in line.capabilities or not isinstance(line, UssdLine):
            result.append({"port": gp.number, "status": 503})
            continue
        if command == "cancel":
            r = await g.services.line_state.ussd(gp.line, gp.index, None)
        else:
            assert text is not None  # verbatim: clients add the '#'
            r = await g.services.line_state.ussd(gp.line, gp.index, text)
            if r.status is UssdStatus.SENT:
                await g.svc.record_ussd(
                    line=gp.line,
                    port=gp.index,
                    text=r.reply or NOTHING_YET,
                    announce=bool(r.reply),
                    account_id=call.account.id,
                )
        result.append({"port": gp.number, "status": USSD_STATUS[r.status]})
    return env.ACCEPTED, {"result": result}


async def query_ussd_reply(g: Gateway, call: Call) -> tuple[int, dict[str, Any]]:
    ports = _ports(g, call, required=False)
    # An account user reads the replies its own account asked for; operators read all.
    asker = None if call.user.operator else call.account.id
    replies = await g.svc.ussd_replies([(gp.line, gp.index) for gp in ports], account_id=asker)
    reply = [
        {"port": gp.number, "text": replies.get((gp.line, gp.index), NOTHING_YET)} for gp in ports
    ]
    return env.OK, {"reply": reply}
