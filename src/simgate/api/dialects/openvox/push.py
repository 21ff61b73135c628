"""OpenVox "SMS to HTTP" pushes (spec §3.4, §7): pure formats and the planner.

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

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncConnection

from simgate.api.dialects.openvox import render
from simgate.api.dialects.openvox.pushconfig import PushConfig, doc_key
from simgate.domain.events import DomainEvent, InboundStored, MessageChange
from simgate.domain.messages import Event
from simgate.domain.records import InboundRecord, MessageRecord
from simgate.push.base import PlannedPush, PushRequest
from simgate.services.container import Services

DIALECT = "openvox"
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


@dataclass
class _Context:
    """Per-plan caches: one read of each account's config and time zone per transaction."""

    configs: dict[int, PushConfig]
    zones: dict[int, str]


class OpenVoxPlanner:
    def __init__(self, services: Services) -> None:
        self._sv = services

    async def plan(self, conn: AsyncConnection, events: Sequence[DomainEvent]) -> list[PlannedPush]:
        inbound_ids = [e.inbound_id for e in events if isinstance(e, InboundStored)]
        changes = [
            e
            for e in events
            if isinstance(e, MessageChange)
            and (e.event in RESULT_EVENTS or e.event in REPORT_EVENTS or e.event is Event.EXPIRE)
        ]
        if not inbound_ids and not changes:
            return []
        ctx = _Context({}, {})
        out: list[PlannedPush] = []
        if inbound_ids:
            for inbound in await self._sv.store.inbound.get(conn, inbound_ids):
                push = await self._incoming(conn, ctx, inbound)
                if push is not None:
                    out.append(push)
        if changes:
            ids = list(dict.fromkeys(e.message_id for e in changes))
            records = {r.id: r for r in await self._sv.store.messages.get(conn, ids)}
            for change in changes:
                rec = records.get(change.message_id)
                if rec is None or rec.dialect != DIALECT:
                    continue
                push = await self._message(conn, ctx, rec, change)
                if push is not None:
                    out.append(push)
        return out

    async def _account(self, conn: AsyncConnection, ctx: _Context, account_id: int) -> PushConfig:
        cfg = ctx.configs.get(account_id)
        if cfg is None:
            doc = await self._sv.store.accounts.get_doc(conn, doc_key(account_id))
            cfg = ctx.configs[account_id] = PushConfig.from_doc(doc)
            account = await self._sv.store.accounts.get_account(conn, account_id)
            ctx.zones[account_id] = account.timezone if account is not None else "UTC"
        return cfg

    async def _incoming(
        self, conn: AsyncConnection, ctx: _Context, rec: InboundRecord
    ) -> PlannedPush | None:
        cfg = await self._account(conn, ctx, rec.account_id)
        if not cfg.enable or not cfg.url_host:
            return None
        url = incoming_url(
            cfg,
            sender=rec.sender,
            port=render.wire_port(rec.port),
            port_name=render.port_name(self._sv.lines, rec.line, rec.port),
            text=rec.text,
            time=render.format_time(rec.received_ms, ctx.zones[rec.account_id]),
            imsi=rec.imsi,
        )
        return PlannedPush(PushRequest("GET", url), f"inbound:{rec.id}", None, "openvox.incoming")

    async def _message(
        self, conn: AsyncConnection, ctx: _Context, rec: MessageRecord, change: MessageChange
    ) -> PlannedPush | None:
        cfg = await self._account(conn, ctx, rec.account_id)
        if not cfg.url_host:
            return None
        info = render.port_info(self._sv.lines, rec.line, rec.port)
        port = render.wire_port(rec.port)
        imsi = info.imsi if info is not None else ""
        time = render.format_time(change.at_ms, ctx.zones[rec.account_id])
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
