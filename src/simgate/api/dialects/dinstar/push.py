"""The Dinstar push format (spec §2.9, §7): domain events → JSON POSTs to the push URL.

One event type per request (``{"sn": ..., "<type>": [...]}``, no error_code), items of one
transaction batched together. ``sms_result`` is pushed when a message is sent, delivered or
fails; ``sms_deliver_status`` once per message, when every part has a report (worst part
wins, spec §7). The target comes from ``simgate gateway push`` (stored in the database)
or else from ``[dinstar] push_url``/``push_types``. The ``incoming_sms_id`` of each incoming
SMS is handed out before, in the same transaction (services/dinstar_inbound.py), and reaches
the format in the notes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from simgate.api.dialects.dinstar import render
from simgate.api.dialects.dinstar.ports import PortMap
from simgate.api.dialects.dinstar.settings import DinstarSettings
from simgate.domain.accounts import App
from simgate.domain.events import (
    CallFinished,
    DomainEvent,
    InboundReceived,
    MessageChanged,
    PortChanged,
    UssdReplied,
)
from simgate.domain.messages import Event, State
from simgate.domain.pushes import EVERY, Interest
from simgate.lines.base import Line
from simgate.push.base import PlannedPush, PushContext, PushRequest
from simgate.services.dinstar import DIALECT, PUSH_DOC
from simgate.services.dinstar_inbound import INBOUND_SEQ

CHUNK = 100
RESULT_STATES = frozenset(
    {State.SENT, State.DELIVERED, State.FAILED, State.EXPIRED, State.REJECTED}
)
REPORT_EVENTS = frozenset({Event.REPORT_DELIVERED, Event.REPORT_FAILED})
MESSAGE_TYPES = frozenset({"sms_result", "sms_deliver_status"})  # the pushes about messages
# Message pushes share one order key, so a DELIVERED never overtakes its SENT_OK.
ORDER = {
    "sms_result": "dinstar:sms-status",
    "sms_deliver_status": "dinstar:sms-status",
    "sms": "dinstar:sms",
    "ussd": "dinstar:ussd",
    "register": "dinstar:register",
}


def body(sn: str, kind: str, items: Sequence[dict[str, Any]]) -> bytes:
    """The push body: ``sn`` and one array-valued event type (spec §2.9)."""
    return orjson.dumps({"sn": sn, kind: list(items)})


# An item and the message or incoming SMS it reports on (None for a port's or USSD's).
Entry = tuple[int | None, dict[str, Any]]


def requests(sn: str, url: str, kind: str, entries: Sequence[Entry]) -> list[PlannedPush]:
    out = []
    for i in range(0, len(entries), CHUNK):
        chunk = entries[i : i + CHUNK]
        out.append(
            PlannedPush(
                request=PushRequest(
                    method="POST",
                    url=url,
                    headers={"Content-Type": "application/json"},
                    body=body(sn, kind, [item for _, item in chunk]),
                ),
                order_key=ORDER[kind],
                kind=f"dinstar.{kind}",
                subjects=tuple(sorted({rec for rec, _ in chunk if rec is not None})),
            )
        )
    return out


class DinstarPush:
    """The Dinstar push format. The target is the stored ``simgate gateway push`` document
    (loaded by the outbox for the key :meth:`docs` names), else the ``[dinstar]`` settings."""

    name = DIALECT
    kinds: frozenset[type[DomainEvent]] = frozenset(
        {MessageChanged, InboundReceived, PortChanged, UssdReplied}
    )
    message_dialects = frozenset({DIALECT})  # _concerns: only its own messages push

    def __init__(self, cfg: DinstarSettings, lines: Mapping[str, Line]) -> None:
        self._cfg = cfg
        self._ports = PortMap(lines, cfg.lines)

    # The stored target (``simgate gateway push``), for :meth:`interest`.
    interest_docs = (PUSH_DOC,)

    def interest(self, docs: Mapping[str, Mapping[str, Any]], apps: Sequence[App]) -> Interest:
        """Every message of this dialect while the target takes message pushes (as
        :meth:`plan` decides: the stored target, else the settings); none otherwise."""
        target = self.target(docs.get(PUSH_DOC))
        if target is None or not target[1] & MESSAGE_TYPES:
            return {}
        return {DIALECT: EVERY}

    def docs(self, events: Sequence[DomainEvent]) -> set[str]:
        return {PUSH_DOC} if any(map(_concerns, events)) else set()

    def target(self, doc: Mapping[str, Any] | None) -> tuple[str, frozenset[str]] | None:
        if doc is not None:
            url, types = doc.get("url"), doc.get("types")
        else:
            url, types = self._cfg.push_url, self._cfg.push_types
        if not isinstance(url, str) or not url or not isinstance(types, list | tuple):
            return None
        return url, frozenset(str(t) for t in types)

    def plan(self, events: Sequence[DomainEvent], ctx: PushContext) -> list[PlannedPush]:
        if not any(map(_concerns, events)):
            return []
        target = self.target(ctx.docs[PUSH_DOC])
        if target is None:
            return []
        url, types = target
        out: dict[str, list[Entry]] = {k: [] for k in ORDER}
        changes = [e for e in events if isinstance(e, MessageChanged)]
        if changes and types & MESSAGE_TYPES:
            self._messages(changes, out)
        inbound = [e for e in events if isinstance(e, InboundReceived)]
        if inbound and "sms" in types:
            self._incoming(inbound, ctx.notes.get(INBOUND_SEQ, {}), out)
        for e in events:
            if isinstance(e, PortChanged) and "register" in types:
                self._register(e, out)
            elif isinstance(e, UssdReplied) and "ussd" in types:
                port = self._ports.number_of(e.line, e.port)
                if port is not None:
                    out["ussd"].append((None, {"port": port, "text": e.text}))
        sn = self._cfg.sn
        return [p for kind in ORDER if kind in types for p in requests(sn, url, kind, out[kind])]

    def _messages(self, changes: Sequence[MessageChanged], out: dict[str, list[Entry]]) -> None:
        for e in changes:
            m = e.record
            if e.state not in RESULT_STATES or m.dialect != DIALECT:
                continue
            port = self._ports.number_of(m.line, m.port)
            imsi = self._ports.imsi(m.line, m.port)
            tz = e.account.timezone
            as_then = dataclasses.replace(m, state=e.state)
            result = render.sms_result(as_then, port=port, imsi=imsi, tz=tz)
            out["sms_result"].append((m.id, result))
            if e.event in REPORT_EVENTS and render.has_delivery_status(m):
                status = render.deliver_status(m, port=port, imsi=imsi, tz=tz)
                out["sms_deliver_status"].append((m.id, status))

    def _incoming(
        self,
        received: Sequence[InboundReceived],
        seqs: Mapping[int, int],
        out: dict[str, list[Entry]],
    ) -> None:
        # One item per stored SMS, in id order (the order incoming_sms_id was handed out).
        for _, e in sorted({e.record.id: e for e in received}.items()):
            r = e.record
            port = self._ports.number_of(r.line, r.port)
            if port is None:
                continue
            item = render.incoming_sms(r, seq=seqs[r.id], port=port, tz=e.account.timezone)
            out["sms"].append((r.id, item))

    def _register(self, e: PortChanged, out: dict[str, list[Entry]]) -> None:
        number = self._ports.number_of(e.line, e.port)
        gp = self._ports.get(number) if number is not None else None
        info = self._ports.info(gp) if gp is not None else None
        if number is None or info is None:
            return
        out["register"].append(
            (
                None,
                render.register(
                    port=number,
                    up=e.up,
                    iccid=info.iccid,
                    imsi=info.imsi,
                    number=info.number,
                    sequence=(e.at_ms // 1000) % 2**31,
                ),
            )
        )


def _concerns(e: DomainEvent) -> bool:
    """Whether an event may owe a Dinstar push (only then is the target read)."""
    if isinstance(e, MessageChanged):
        return e.record.dialect == DIALECT and e.state in RESULT_STATES
    return not isinstance(e, CallFinished)
