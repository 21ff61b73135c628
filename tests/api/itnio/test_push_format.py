"""The itniotech push format on hand-built domain events (spec §1.9, §1.10, §1.16, §7).

No database: the events carry the record, the account and the app, as the event bus builds
them, and the format must say which requests they owe (method, URL, body, order, signing).
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from simgate.api.dialects.itnio.push import ItnioPush
from simgate.api.dialects.itnio.voice_render import push_item
from simgate.domain.accounts import AppKind
from simgate.domain.calls import CallState
from simgate.domain.events import CallFinished, DomainEvent, PortChanged, UssdReplied
from simgate.domain.messages import Event, State
from simgate.push.base import PlannedPush
from tests.support.itnio_calls import SEED_CALL, VOICE_APP
from tests.support.push_events import (
    ACCOUNT,
    T0,
    changed,
    context,
    inbound,
    message,
    received,
    sms_app,
)

JSON = "application/json;charset=UTF-8"
APP = sms_app(1, {"report_url": "https://c.example/r", "mo_url": "https://c.example/m"})
FMT = ItnioPush()


def plan(*events: DomainEvent) -> list[PlannedPush]:
    assert FMT.docs(events) == set()  # every target is on the app the event carries
    return FMT.plan(events, context())


def body(p: PlannedPush) -> dict[str, Any]:
    assert p.request.body is not None
    data: dict[str, Any] = json.loads(p.request.body)
    return data


def test_final_message_owes_one_report_with_the_documented_types() -> None:
    m = message(app_id=APP.id, client_ref="o-7", parts=2, charge_micros=20_000)
    (p,) = plan(changed(m, Event.REPORT_DELIVERED, app=APP))
    assert (p.request.method, p.request.url, p.order_key, p.kind) == (
        "POST",
        "https://c.example/r",
        f"msg:{m.id}",
        "itnio.report",
    )
    assert p.request.headers == {"Content-Type": JSON}
    assert p.signing_secret is None
    b = body(p)
    # §1.9: field names and JSON types; orderId present because the client gave one (§7).
    types = {k: type(v) for k, v in b.items()}
    assert types == {
        "appId": str,
        "orderId": str,
        "msgid": str,
        "mobile": str,
        "status": int,
        "reason": str,
        "timestamp": int,
        "mcc": str,
        "mnc": str,
        "pricedetail": dict,
    }
    assert (b["appId"], b["orderId"], b["msgid"], b["status"], b["reason"]) == (
        APP.app_id,
        "o-7",
        str(m.id),
        0,
        "0",
    )
    assert b["timestamp"] == m.delivered_ms
    assert {k: type(v) for k, v in b["pricedetail"].items()} == {
        "pay": str,
        "currency": str,
        "chargeCnt": int,
        "price": str,
    }
    assert b["pricedetail"]["chargeCnt"] == 2


def test_failed_message_report_carries_the_failure() -> None:
    m = message(
        app_id=APP.id,
        state=State.FAILED,
        delivered_ms=None,
        failed_ms=T0 + 9_000,
        status_code=34,
        error_text="absent subscriber",
    )
    (p,) = plan(changed(m, Event.REPORT_FAILED, app=APP))
    b = body(p)
    assert (b["status"], b["reason"], b["timestamp"]) == (34, "absent subscriber", T0 + 9_000)
    assert "orderId" not in b


def test_only_final_messages_of_this_dialect_with_a_report_url_are_reported() -> None:
    final = message(app_id=APP.id)
    no_url = sms_app(2, {"mo_url": "https://c.example/m"})
    assert plan(changed(message(app_id=1, state=State.SENT), Event.SUBMIT_OK, app=APP)) == []
    other = dataclasses.replace(final, dialect="dinstar")
    assert plan(changed(other, Event.REPORT_DELIVERED, app=APP)) == []
    assert plan(changed(dataclasses.replace(final, app_id=None), Event.REPORT_DELIVERED)) == []
    assert plan(changed(final, Event.REPORT_DELIVERED, app=None)) == []  # app deleted
    assert plan(changed(final, Event.REPORT_DELIVERED, app=no_url)) == []
    # The change reached a final state, but the record must be final too.
    queued = message(app_id=APP.id, state=State.QUEUED)
    assert plan(changed(queued, Event.REPORT_DELIVERED, state=State.DELIVERED, app=APP)) == []


def test_reports_once_per_message_in_order_key_order() -> None:
    ids = [2601010000000000009, 2601010000000000003, 2601010000000000010]
    events = [changed(message(id=i, app_id=APP.id), Event.REPORT_DELIVERED, app=APP) for i in ids]
    pushes = plan(*events, events[0])  # the same message twice in one transaction
    assert [p.order_key for p in pushes] == sorted(f"msg:{i}" for i in ids)


def test_signing_secret_of_the_app_is_passed_on() -> None:
    signed = dataclasses.replace(APP, push={**APP.push, "signing_secret": "whsec-1"})
    (p,) = plan(changed(message(app_id=APP.id), Event.REPORT_DELIVERED, app=signed))
    assert p.signing_secret == "whsec-1"


def test_incoming_sms_goes_to_every_sms_app_of_the_account_with_an_mo_url() -> None:
    second = sms_app(5, {"mo_url": "https://other.example/mo", "signing_secret": "whsec-2"})
    voice = sms_app(3, {"mo_url": "https://voice.example/mo"}, kind=AppKind.VOICE)
    silent = sms_app(4, {"report_url": "https://c.example/r"})
    r = inbound()
    pushes = plan(received(r, apps=(APP, voice, silent, second)))
    assert [(p.request.url, p.signing_secret) for p in pushes] == [
        ("https://c.example/m", None),
        ("https://other.example/mo", "whsec-2"),
    ]
    for p in pushes:
        assert (p.request.method, p.order_key, p.kind) == ("POST", f"msg:{r.id}", "itnio.mo")
        assert p.request.headers == {"Content-Type": JSON}
    b = body(pushes[0])
    # §1.10: snake_case reply_time as yyyy-MM-dd HH:mm:ss in the account's zone; Int mcc/mnc.
    assert {k: type(v) for k, v in b.items()} == {
        "msgid": str,
        "mobile": str,
        "reply_time": str,
        "content": str,
        "sendid": str,
        "mcc": int,
        "mnc": int,
        "operator": str,
        "pricedetail": dict,
    }
    assert (b["msgid"], b["mobile"], b["content"], b["sendid"]) == (
        str(r.id),
        r.sender,
        r.text,
        r.recipient,
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", b["reply_time"])
    assert b["reply_time"] == "2026-01-01 08:00:03"  # Asia/Shanghai
    assert (b["mcc"], b["mnc"]) == (460, 0)


def test_incoming_sms_are_pushed_once_each_in_id_order() -> None:
    first, later = inbound(id=2601010000000000100), inbound(id=2601010000000000200)
    mo = received(later, apps=(APP,))
    pushes = plan(mo, received(first, apps=(APP,)), mo)
    assert [body(p)["msgid"] for p in pushes] == [str(first.id), str(later.id)]


def test_finished_call_owes_one_voice_report() -> None:
    (p,) = plan(CallFinished(SEED_CALL, T0, ACCOUNT, VOICE_APP))
    assert (p.request.method, p.request.url, p.order_key, p.kind) == (
        "POST",
        "https://c.example/v",
        f"call:{SEED_CALL.id}",
        "itnio.voice",
    )
    assert body(p) == push_item(SEED_CALL)  # §1.16 field by field: test_voice_render.py
    assert isinstance(body(p)["voiceId"], str)
    assert isinstance(body(p)["submitTime"], int)


def test_calls_of_a_batch_app_are_pushed_together_in_id_order() -> None:
    batch = dataclasses.replace(VOICE_APP, push={**VOICE_APP.push, "voice_batch": "true"})
    calls = [dataclasses.replace(SEED_CALL, id=SEED_CALL.id + n) for n in (2, 0, 1)]
    (p,) = plan(*(CallFinished(c, T0, ACCOUNT, batch) for c in calls))
    assert [i["voiceId"] for i in body(p)["array"]] == [str(SEED_CALL.id + n) for n in (0, 1, 2)]
    assert p.order_key == f"call:{SEED_CALL.id}"


def test_unfinished_calls_and_calls_without_app_owe_nothing() -> None:
    calling = dataclasses.replace(SEED_CALL, state=CallState.CALLING)
    assert plan(CallFinished(calling, T0, ACCOUNT, VOICE_APP)) == []
    assert plan(CallFinished(SEED_CALL, T0, ACCOUNT, None)) == []


def test_kinds_are_planned_reports_first_then_incoming_then_voice() -> None:
    events: list[DomainEvent] = [
        CallFinished(SEED_CALL, T0, ACCOUNT, VOICE_APP),
        received(inbound(), apps=(APP,)),
        PortChanged("sim", 0, True, T0),
        UssdReplied("sim", 0, "balance 5", T0),
        changed(message(app_id=APP.id), Event.REPORT_DELIVERED, app=APP),
    ]
    assert [p.kind for p in plan(*events)] == ["itnio.report", "itnio.mo", "itnio.voice"]
