"""SMS endpoints: send_sms, query_sms_result, query_sms_deliver_status, query_incoming_sms,
query_sms_in_queue, stop_sms (spec §2.2-§2.6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simgate.api.dialects.dinstar import envelope as env
from simgate.api.dialects.dinstar import render
from simgate.api.dialects.dinstar.context import Call, Gateway
from simgate.api.dialects.dinstar.ports import PortMap
from simgate.api.dialects.dinstar.settings import DinstarSettings
from simgate.codecs.gsm7 import is_gsm7
from simgate.codecs.segments import Encoding
from simgate.domain.accounts import Account
from simgate.errors import ContentTooLong, InvalidInput, NoRoute, NotFound, TooManyNumbers
from simgate.services.dinstar import LinePort, MessageQuery
from simgate.services.sending import Recipient, SendRequest

PLACEHOLDER = "#param#"
MAX_USER_ID = 2**31 - 1  # clients keep user_id in a 32-bit int (Java client's Integer)
MAX_PORT = 255
NUMBER_CHARS = frozenset("0123456789")
QUEUE_COUNT_AGE_MS = 500
EARLIEST_MS = 946_684_800_000  # 2000-01-01
LATEST_MS = 3_849_983_999_000  # 2091-12-31 23:59:59: ids stay below 2**63 until 2092


def fill(text: str, values: list[str]) -> str:
    """Replace successive ``#param#`` with ``values`` (spec §2.2); missing values are empty."""
    pieces = text.split(PLACEHOLDER)
    out = [pieces[0]]
    for i, piece in enumerate(pieces[1:]):
        out.append(values[i] if i < len(values) else "")
        out.append(piece)
    return "".join(out)


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _number(item: dict[str, Any]) -> str:
    n = item.get("number")
    if not isinstance(n, str) or not 0 < len(n.encode()) <= 24:
        raise InvalidInput("param[].number must be a string of 1..24 bytes")
    n = n.strip()
    digits = n[1:] if n.startswith("+") else n
    if not digits or not set(digits) <= NUMBER_CHARS:
        raise InvalidInput(f"param[].number {n!r} is not a phone number")
    return n


def _recipient(item: Any, text: str, max_bytes: int) -> Recipient:
    if not isinstance(item, dict):
        raise InvalidInput("param[] items must be objects")
    number = _number(item)
    uid = env.read_int(item, "user_id", lo=0, hi=MAX_USER_ID)
    values = item.get("text_param")
    body: str | None = None
    if values is not None:
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidInput("param[].text_param must be an array of strings")
        if sum(_utf8_len(v) for v in values) > max_bytes:
            raise ContentTooLong(f"text is longer than {max_bytes} bytes")
        body = fill(text, values)
        if _utf8_len(body) > max_bytes:
            raise ContentTooLong(f"text is longer than {max_bytes} bytes")
    return Recipient(number, None if uid is None else str(uid), body)


def choose_line(ports: PortMap, wanted: list[int] | None) -> tuple[str, str | None]:
    """The line to send on and its port hint: the line with most usable wanted ports."""
    candidates = [ports.get(n) for n in wanted] if wanted is not None else list(ports.ports)
    known = [gp for gp in candidates if gp is not None]
    usable: dict[str, int] = {}
    for gp in known:
        info = ports.info(gp)
        if info is not None and info.usable:
            usable[gp.line] = usable.get(gp.line, 0) + 1
    if not usable:
        raise NoRoute("no available port")  # 550 (spec §2.2)
    line = max(usable, key=lambda name: usable[name])
    if wanted is None and len(ports.line_names) == 1:
        return line, None
    hint = sorted({gp.index for gp in known if gp.line == line})
    return line, ",".join(str(i) for i in hint)


@dataclass(frozen=True, slots=True)
class SendForm:
    """A parsed send_sms request (spec §2.2)."""

    text: str
    recipients: list[Recipient]
    wanted_ports: list[int] | None  # gateway port numbers; None = any
    encoding: Encoding | None  # None: the send service picks from the text
    report: bool


def parse_send(p: env.Params, cfg: DinstarSettings) -> SendForm:
    text = env.read_str(p, "text", required=True)
    assert text is not None
    items = p.get("param")
    if not isinstance(items, list) or not items:
        raise InvalidInput("param must be a non-empty array")
    # Limits first (413, spec §2.2), before looking at 10 000 items one by one.
    if len(items) > cfg.max_numbers:
        raise TooManyNumbers(f"more than {cfg.max_numbers} numbers")
    if _utf8_len(text) > cfg.max_text_bytes:
        raise ContentTooLong(f"text is longer than {cfg.max_text_bytes} bytes")
    wanted = env.read_int_list(p, "port", lo=0, hi=MAX_PORT)
    encoding = env.read_str(p, "encoding")
    if encoding not in (None, "unicode", "gsm-7bit"):
        raise InvalidInput('encoding must be "unicode" or "gsm-7bit"')
    report = env.read_bool(p, "request_status_report", default=True)
    recipients = [_recipient(item, text, cfg.max_text_bytes) for item in items]
    texts = {r.text if r.text is not None else text for r in recipients}
    # "unicode" is the vendor default (UCS-2 always); gsm-7bit falls back to UCS-2 for a
    # text GSM-7 cannot carry rather than mangling it.
    enc: Encoding | None = Encoding.UCS2
    if encoding == "gsm-7bit":
        enc = Encoding.GSM7 if all(is_gsm7(t) for t in texts) else None
    return SendForm(
        text=text, recipients=recipients, wanted_ports=wanted, encoding=enc, report=report
    )


async def send_sms(g: Gateway, call: Call) -> tuple[int, dict[str, Any]]:
    form = parse_send(call.params, g.cfg)
    usable = g.usable_ports(call, form.wanted_ports)  # an account user: its ports only
    wanted = form.wanted_ports if usable is None else [gp.number for gp in usable]
    line, hint = choose_line(g.ports, wanted)
    task_id = await g.svc.new_task_id()
    outcome = await g.services.sending.send(
        SendRequest(
            account=call.account,
            dialect="dinstar",
            text=form.text,
            recipients=form.recipients,
            port_hint=hint,
            encoding=form.encoding,
            report_requested=form.report,
            task_id=task_id,
            line=line,
            dial_as_given=True,
        )
    )
    if outcome.invalid:  # the dialect checked them already; kept as a guard
        raise InvalidInput(f"not phone numbers: {', '.join(outcome.invalid[:5])}")
    in_queue = await g.svc.queued(
        g.ports.line_names,
        account_id=_queue_owner(call),
        max_age_ms=QUEUE_COUNT_AGE_MS,
        added=len(outcome.accepted),
    )
    return env.ACCEPTED, {"sms_in_queue": in_queue, "task_id": task_id}


def _gw_port(g: Gateway, line: str | None, port: int | None) -> int:
    number = g.ports.number_of(line, port)
    return render.NO_PORT if number is None else number


def _port_pairs(ports: PortMap, numbers: list[int] | None) -> list[LinePort] | None:
    if numbers is None:
        return None
    return [(gp.line, gp.index) for n in numbers if (gp := ports.get(n)) is not None]


def _time(p: env.Params, name: str, tz: str) -> int | None:
    value = env.read_str(p, name, max_bytes=32)
    if not value:
        return None
    try:
        ms = render.parse_time(value.strip(), tz)
    except ValueError:
        raise InvalidInput(f"{name} must be YYYY-MM-DD HH:MM:SS") from None
    # Message ids carry a two-digit year (domain/ids.py): only this century can be a bound.
    return min(max(ms, EARLIEST_MS), LATEST_MS)


def parse_query(
    p: env.Params, *, account: Account, ports: PortMap, cfg: DinstarSettings
) -> MessageQuery | None:
    """Common filters of the two result queries; None when they can match nothing."""
    tz = account.timezone
    numbers = env.read_numbers(p, "number", max_items=cfg.max_query_numbers)
    pairs = _port_pairs(ports, env.read_int_list(p, "port", lo=0, hi=MAX_PORT))
    after, before = _time(p, "time_after", tz), _time(p, "time_before", tz)
    if pairs == [] or numbers == []:
        return None
    return MessageQuery(
        account_id=account.id,
        numbers=None if numbers is None else tuple(numbers),
        ports=None if pairs is None else tuple(pairs),
        after_ms=after,
        before_ms=before,
        limit=cfg.result_limit,
    )


def _query(g: Gateway, call: Call) -> MessageQuery | None:
    return parse_query(call.params, account=call.account, ports=g.ports, cfg=g.cfg)


async def query_sms_result(g: Gateway, call: Call) -> tuple[int, dict[str, Any]]:
    query = _query(g, call)
    users = env.read_int_list(call.params, "user_id", lo=0, hi=MAX_USER_ID, max_items=1000)
    if query is None or users == []:
        return env.OK, {"result": []}
    rows = await g.svc.sent_messages(
        query, user_refs=None if users is None else [str(u) for u in users]
    )
    tz = call.account.timezone
    result = [
        render.sms_result(
            m, port=g.ports.number_of(m.line, m.port), imsi=g.ports.imsi(m.line, m.port), tz=tz
        )
        for m in rows
    ]
    return env.OK, {"result": result}


async def query_sms_deliver_status(g: Gateway, call: Call) -> tuple[int, dict[str, Any]]:
    query = _query(g, call)
    if query is None:
        return env.OK, {"result": []}
    # `time` here is when the report arrived (spec §7): the service bounds the report time.
    rows = await g.svc.reported_messages(query)
    tz = call.account.timezone
    result = [
        render.deliver_status(
            m, port=g.ports.number_of(m.line, m.port), imsi=g.ports.imsi(m.line, m.port), tz=tz
        )
        for m in rows
    ]
    return env.OK, {"result": result}


async def query_incoming_sms(g: Gateway, call: Call) -> tuple[int, dict[str, Any]]:
    p = call.params
    after = env.read_int(p, "incoming_sms_id", lo=0, hi=MAX_USER_ID, default=0)  # an int32
    flag = env.read_str(p, "flag", max_bytes=16) or "all"
    if flag not in ("unread", "read", "all"):
        raise InvalidInput('flag must be "unread", "read" or "all"')
    ports = _port_pairs(g.ports, env.read_int_list(p, "port", lo=0, hi=MAX_PORT))
    if ports == []:
        return env.OK, {"sms": [], "read": 0, "unread": 0}
    page = await g.svc.incoming(
        account_id=call.account.id,
        after_seq=after or 0,
        read={"unread": False, "read": True}.get(flag),
        mark_read=flag == "unread",  # reading the unread marks them read (spec §2.5)
        ports=ports,
        limit=g.cfg.incoming_limit,
    )
    tz = call.account.timezone
    sms = [
        render.incoming_sms(
            n.record, seq=n.seq, port=_gw_port(g, n.record.line, n.record.port), tz=tz
        )
        for n in page.sms
    ]
    return env.OK, {"sms": sms, "read": page.read, "unread": page.unread}


async def query_sms_in_queue(g: Gateway, call: Call) -> tuple[int, dict[str, Any]]:
    return env.OK, {
        "in_queue": await g.svc.queued(g.ports.line_names, account_id=_queue_owner(call))
    }


def _queue_owner(call: Call) -> int | None:
    """Whose queued messages a caller counts: operators the gateway's, others their own."""
    return None if call.user.operator else call.account.id


async def stop_sms(g: Gateway, call: Call) -> tuple[int, dict[str, Any]]:
    task_id = env.read_int(call.params, "task_id", lo=0, hi=2**63 - 1)
    if task_id is None:
        raise InvalidInput("task_id is required")
    stopped = await g.svc.stop_task(account_id=call.account.id, task_id=task_id)
    if stopped is None:
        raise NotFound(f"task {task_id} not found")  # 404 (spec §2.6)
    return env.OK, {}
