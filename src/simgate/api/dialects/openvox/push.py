"""OpenVox "SMS to HTTP" pushes (spec §3.4, §7): the pure push format.

All three pushes are HTTP GETs to ``{url_http}://{url_host}:{url_port}{url_path}?...`` whose
query-parameter names are the configured ``url_*`` values; ``id``, ``type`` and ``cause`` are
fixed literal names (§3.4b/c). Values are URI-encoded (Asterisk URIENCODE: everything but
unreserved characters), ports are 1-based, times ``YYYY-MM-DD HH:MM:SS`` (§7) in the
account's zone. Each query ends with ``&`` followed by ``url_user_defined`` (§3.4a; §7 adds it
to the result and report pushes too). A ``url_*`` name left empty drops that parameter.

Which pushes (§7): every incoming SMS when ``enable`` is on; send results (``results_enable``)
and delivery reports (``reports_enable``) for messages sent through this dialect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from simgate.api.dialects.openvox import render
from simgate.api.dialects.openvox.pushconfig import PushConfig, doc_key
from simgate.domain.accounts import App
from simgate.domain.events import DomainEvent, InboundReceived, MessageChanged
from simgate.domain.messages import Event
from simgate.domain.pushes import Interest, Owners
from simgate.lines.base import Line
from simgate.push.base import PlannedPush, PushContext, PushRequest

DIALECT = "openvox"
DOC_PREFIX = doc_key(0)[:-1]  # "openvox.push."
RESULT_TYPE = "SMS-Status-Result"
REPORT_TYPE = "SMS-Status-Report"
REPORT_OK = "Message received on handset"
REPORT_FAIL = "Message not received on handset"

# Events that end sending (the line's answer) and events that carry a delivery report.
RESULT_EVENTS = {Event.SUBMIT_OK: True, Event.SUBMIT_FAILED: False, Event.SUBMIT_REJECTED: False}
REPORT_EVENTS = {Event.REPORT_DELIVERED: True, Event.REPORT_FAILED: False}


def _query(pairs: Sequence[tuple[str, str]], user_defined: str) -> str:
    joined = "&".join(f"{name}={quote(value, safe='')}" for name, value in pairs if name)
    return f"{joined}&{user_defined}"


def incoming_url(
    cfg: PushConfig, *, sender: str, port: int, port_name: str, text: str, time: str, imsi: str
) -> str:
    """§3.4a: from_num, to_num (port), portname, message, time, imsi, user_defined."""
    pairs = [
        (cfg.url_from_num, sender),
        (cfg.url_to_num, str(port)),
        (cfg.url_portname, port_name),
        (cfg.url_message, text),
        (cfg.url_time, time),
        (cfg.url_imsi, imsi),
    ]
    return f"{cfg.base_url()}?{_query(pairs, cfg.url_user_defined)}"


def result_url(
    cfg: PushConfig, *, recipient: str, port: int, message_id: int, imsi: str, time: str, sent: bool
) -> str:
    """§3.4b: the from_num slot carries the destination; message is empty; Sent|Fail."""
    pairs = [
        (cfg.url_from_num, recipient),
        (cfg.url_to_num, str(port)),
        ("id", str(message_id)),
        (cfg.url_imsi, imsi),
        (cfg.url_message, ""),
        (cfg.url_time, time),
        ("type", RESULT_TYPE),
        (cfg.url_status, "Sent" if sent else "Fail"),
    ]
    return f"{cfg.base_url()}?{_query(pairs, cfg.url_user_defined)}"


def report_url(
    cfg: PushConfig, *, recipient: str, port: int, imsi: str, time: str, delivered: bool, cause: str
) -> str:
    """§3.4c: no message id; status is a sentence; ``cause`` is a literal name."""
    pairs = [
        (cfg.url_from_num, recipient),
        (cfg.url_to_num, str(port)),
        (cfg.url_imsi, imsi),
        (cfg.url_message, ""),
        (cfg.url_time, time),
        ("type", REPORT_TYPE),
        (cfg.url_status, REPORT_OK if delivered else REPORT_FAIL),
        ("cause", cause),
    ]
    return f"{cfg.base_url()}?{_query(pairs, cfg.url_user_defined)}"


class OpenVoxPush:
    """The OpenVox push format; each account's ``url_*`` config comes from its stored
    document (get_config/set_config), which the outbox loads for the keys :meth:`docs` names."""

    name = DIALECT
    kinds: frozenset[type[DomainEvent]] = frozenset({MessageChanged, InboundReceived})
    message_dialects = frozenset({DIALECT})  # _wanted: only its own messages push

    def __init__(self, lines: Mapping[str, Line]) -> None:
        self._lines = dict(lines)  # ports and SIMs as the lines see them now (names, IMSI)

    # The accounts' push settings documents (doc_key), for :meth:`interest`.
    interest_docs = (DOC_PREFIX,)

    def interest(self, docs: Mapping[str, Mapping[str, Any]], apps: Sequence[App]) -> Interest:
        """The accounts whose send results or delivery reports push (a host and
        ``results_enable`` or ``reports_enable``, as :meth:`_message` asks): only their
        messages of this dialect may owe one. A document it cannot read counts as pushing."""
        accounts: set[int] = set()
        for key, doc in docs.items():
            if not key.startswith(DOC_PREFIX) or not key[len(DOC_PREFIX) :].isdigit():
                continue
            try:
                cfg = PushConfig.from_doc(doc)
                pushes = bool(cfg.url_host) and bool(cfg.results_enable or cfg.reports_enable)
            except (TypeError, ValueError):
                pushes = True  # let plan() meet it, as it did before the interest
            if pushes:
                accounts.add(int(key[len(DOC_PREFIX) :]))
        return {DIALECT: Owners(accounts=frozenset(accounts))} if accounts else {}

    def docs(self, events: Sequence[DomainEvent]) -> set[str]:
        return {doc_key(account_id) for account_id in _accounts(events)}

    def plan(self, events: Sequence[DomainEvent], ctx: PushContext) -> list[PlannedPush]:
        configs: dict[int, PushConfig] = {}

        def config(account_id: int) -> PushConfig:
            if account_id not in configs:
                configs[account_id] = PushConfig.from_doc(ctx.docs.get(doc_key(account_id)))
            return configs[account_id]

        out: list[PlannedPush] = []
        received = {e.record.id: e for e in events if isinstance(e, InboundReceived)}
        for _, mo in sorted(received.items()):
            push = self._incoming(config(mo.record.account_id), mo)
            if push is not None:
                out.append(push)
        for e in events:
            if isinstance(e, MessageChanged) and _wanted(e):
                push = self._message(config(e.record.account_id), e)
                if push is not None:
                    out.append(push)
        return out

    def _incoming(self, cfg: PushConfig, e: InboundReceived) -> PlannedPush | None:
        if not cfg.enable or not cfg.url_host:
            return None
        rec = e.record
        url = incoming_url(
            cfg,
            sender=rec.sender,
            port=render.wire_port(rec.port),
            port_name=render.port_name(self._lines, rec.line, rec.port),
            text=rec.text,
            time=render.format_time(rec.received_ms, e.account.timezone),
            imsi=rec.imsi,
        )
        return PlannedPush(PushRequest("GET", url), f"inbound:{rec.id}", None, "openvox.incoming")

    def _message(self, cfg: PushConfig, change: MessageChanged) -> PlannedPush | None:
        if not cfg.url_host:
            return None
        rec = change.record
        info = render.port_info(self._lines, rec.line, rec.port)
        port = render.wire_port(rec.port)
        imsi = info.imsi if info is not None else ""
        time = render.format_time(change.at_ms, change.account.timezone)
        if change.event in REPORT_EVENTS:
            if not cfg.reports_enable:
                return None
            delivered = REPORT_EVENTS[change.event]
            cause = str(rec.status_code or 0)
            url = report_url(
                cfg,
                recipient=rec.recipient,
                port=port,
                imsi=imsi,
                time=time,
                delivered=delivered,
                cause=cause,
            )
            kind = "openvox.report"
        else:
            # A message that expired after it was sent waits for a report that never came:
            # that is not a send result. One that expired unsent did fail to send.
            if change.event is Event.EXPIRE and rec.sent_ms is not None:
                return None
            if not cfg.results_enable:
                return None
            sent = RESULT_EVENTS.get(change.event, False)
            url = result_url(
                cfg,
                recipient=rec.recipient,
                port=port,
                message_id=rec.id,
                imsi=imsi,
                time=time,
                sent=sent,
            )
            kind = "openvox.result"
        return PlannedPush(PushRequest("GET", url), f"msg:{rec.id}", None, kind)


def _wanted(e: MessageChanged) -> bool:
    """A send result, a delivery report or an expiry of a message sent through this dialect."""
    return e.record.dialect == DIALECT and (
        e.event in RESULT_EVENTS or e.event in REPORT_EVENTS or e.event is Event.EXPIRE
    )


def _accounts(events: Sequence[DomainEvent]) -> set[int]:
    """The accounts whose push config the events need."""
    out = {e.record.account_id for e in events if isinstance(e, InboundReceived)}
    out.update(e.record.account_id for e in events if isinstance(e, MessageChanged) and _wanted(e))
    return out
