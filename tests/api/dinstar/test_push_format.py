"""The Dinstar push format on hand-built domain events (spec §2.9, §7), no database.

One event type per request (``{"sn": ..., "<type>": [...]}``, no ``error_code``), at most 100
items per request; the target is the stored document, else the ``[dinstar]`` settings.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from simgate.api.dialects.dinstar.push import DinstarPush
from simgate.api.dialects.dinstar.settings import DinstarSettings
from simgate.domain.calls import CallRecord
from simgate.domain.events import CallFinished, DomainEvent, PortChanged, UssdReplied
from simgate.domain.messages import Event, State
from simgate.domain.records import MessageRecord
from simgate.lines.sim import SimLine
from simgate.push.base import PlannedPush
from simgate.services.dinstar import PUSH_DOC
from simgate.services.dinstar_inbound import INBOUND_SEQ
from simgate.settings import SimLineSettings
from simgate.testing.clock import FakeClock
from tests.api.dinstar.conftest import SmsResult
from tests.support.itnio_calls import SEED_CALL
from tests.support.push_events import ACCOUNT, T0, changed, context, inbound, message, received

SN = "ABCD-0000-0000-0001"
URL = "http://push.example/dinstar"
LINE = SimLine("sim", SimLineSettings(ports=4), FakeClock())
FMT = DinstarPush(DinstarSettings(sn=SN, push_url=URL), {"sim": LINE})
NO_DOC: dict[str, dict[str, Any] | None] = {PUSH_DOC: None}


def _gw(**changes: Any) -> MessageRecord:
    return message(dialect="dinstar", **changes)


def _bodies(pushes: list[PlannedPush]) -> list[dict[str, Any]]:
    out = []
    for p in pushes:
        assert (p.request.method, p.request.url) == ("POST", URL)
        assert p.request.headers == {"Content-Type": "application/json"}
        assert p.signing_secret is None
        assert p.request.body is not None
        body: dict[str, Any] = json.loads(p.request.body)
        assert body["sn"] == SN
        assert "error_code" not in body
        assert len(body) == 2  # sn and one event type
        out.append(body)
    return out


def test_the_target_is_read_only_for_events_that_may_owe_a_push() -> None:
    call = CallFinished(SEED_CALL, T0, ACCOUNT, None)
    assert FMT.docs([call]) == set()
    assert FMT.docs([changed(message(), Event.REPORT_DELIVERED)]) == set()  # not ours
    assert FMT.docs([changed(_gw(state=State.QUEUED), Event.SUBMIT_RETRY)]) == set()
    for e in (
        changed(_gw(state=State.SENT), Event.SUBMIT_OK),
        received(inbound()),
        PortChanged("sim", 0, True, T0),
        UssdReplied("sim", 0, "hi", T0),
    ):
        assert FMT.docs([call, e]) == {PUSH_DOC}
    assert FMT.plan([call], context()) == []


def test_send_result_and_delivery_status_with_the_documented_types() -> None:
    sent = _gw(state=State.SENT, client_ref="77", port=1, first_ref=215, delivered_ms=None)
    done = _gw(client_ref="77", port=1, first_ref=215)
    pushes = FMT.plan(
        [
            changed(sent, Event.SUBMIT_OK),
            changed(done, Event.REPORT_DELIVERED),
        ],
        context(NO_DOC),
    )
    assert [(p.kind, p.order_key) for p in pushes] == [
        ("dinstar.sms_result", "dinstar:sms-status"),
        ("dinstar.sms_deliver_status", "dinstar:sms-status"),
    ]
    results, status = _bodies(pushes)
    imsi = LINE.ports()[1].imsi
    assert results["sms_result"] == [
        {
            "port": 1,
            "user_id": 77,
            "number": sent.recipient,
            "time": "2026-01-01 08:00:02",  # sent time in the account's zone
            "status": "SENT_OK",
            "count": 1,
            "succ_count": 1,
            "ref_id": 215,
            "imsi": imsi,
        },
        {
            "port": 1,
            "user_id": 77,
            "number": done.recipient,
            "time": "2026-01-01 08:00:02",
            "status": "DELIVERED",
            "count": 1,
            "succ_count": 1,
            "ref_id": 215,
            "imsi": imsi,
        },
    ]
    # §7: the deliver-status time is when the (last) report arrived.
    assert status["sms_deliver_status"] == [
        {
            "port": 1,
            "number": done.recipient,
            "time": "2026-01-01 08:00:05",
            "ref_id": 215,
            "status_code": 0,
            "imsi": imsi,
        }
    ]


def test_a_result_without_user_id_still_builds_a_typed_client_object() -> None:
    """spec Amendments: every ``sms_result`` item carries ``user_id``, 0 when the send gave
    none, since receivers build typed objects with it required."""
    sent = _gw(state=State.SENT, client_ref=None, first_ref=7, delivered_ms=None)
    (p,) = FMT.plan([changed(sent, Event.SUBMIT_OK)], context(NO_DOC))
    (item,) = _bodies([p])[0]["sms_result"]
    assert SmsResult(**item).user_id == 0
    assert list(item)[:2] == ["port", "user_id"]  # the vendor sample's order


def test_the_result_shows_the_state_of_the_change_not_a_later_one() -> None:
    later = _gw()  # delivered by the time the transaction commits
    (p,) = FMT.plan([changed(later, Event.SUBMIT_OK, state=State.SENT)], context(NO_DOC))
    assert _bodies([p])[0]["sms_result"][0]["status"] == "SENT_OK"


def test_delivery_status_waits_for_every_part() -> None:
    partial = _gw(parts=2, parts_reported=1)
    pushes = FMT.plan([changed(partial, Event.REPORT_DELIVERED)], context(NO_DOC))
    assert [p.kind for p in pushes] == ["dinstar.sms_result"]


def test_incoming_sms_carries_the_number_handed_out_in_the_transaction() -> None:
    first, second = inbound(id=10, port=3), inbound(id=20, port=0)
    unmapped = inbound(id=30, line="elsewhere")
    notes = {INBOUND_SEQ: {10: 41, 20: 42, 30: 43}}
    events = [received(second), received(unmapped), received(first)]
    (p,) = FMT.plan(events, context(NO_DOC, notes))
    assert (p.kind, p.order_key) == ("dinstar.sms", "dinstar:sms")
    (body,) = _bodies([p])
    assert body["sms"] == [
        {
            "incoming_sms_id": 41,
            "port": 3,
            "number": first.sender,
            "smsc": first.smsc,
            "timestamp": "2026-01-01 08:00:03",
            "text": first.text,
            "imsi": first.imsi,
        },
        {
            "incoming_sms_id": 42,
            "port": 0,
            "number": second.sender,
            "smsc": second.smsc,
            "timestamp": "2026-01-01 08:00:03",
            "text": second.text,
            "imsi": second.imsi,
        },
    ]


def test_ussd_and_register_pushes() -> None:
    events: list[DomainEvent] = [
        UssdReplied("sim", 2, "Thank you!", T0),
        PortChanged("sim", 1, True, T0 + 7_000),
        PortChanged("sim", 1, False, T0 + 9_000),
        PortChanged("elsewhere", 0, True, T0),
    ]
    ussd, register = _bodies(FMT.plan(events, context(NO_DOC)))
    assert ussd == {"sn": SN, "ussd": [{"port": 2, "text": "Thank you!"}]}
    port = LINE.ports()[1]
    assert register["register"] == [
        {
            "port": 1,
            "iccid": port.iccid,
            "imsi": port.imsi,
            "number": port.number,
            "status": "up",
            "sequence": ((T0 + 7_000) // 1000) % 2**31,
            "slot": 255,
        },
        {
            "port": 1,
            "iccid": "<NULL>",  # §2.9: the literal string on down
            "imsi": "<NULL>",
            "number": port.number,
            "status": "down",
            "sequence": ((T0 + 9_000) // 1000) % 2**31,
            "slot": 255,
        },
    ]


def test_the_stored_target_wins_over_the_settings_and_chooses_the_types() -> None:
    events: list[DomainEvent] = [
        changed(_gw(state=State.SENT), Event.SUBMIT_OK),
        UssdReplied("sim", 0, "x", T0),
    ]
    doc = {PUSH_DOC: {"url": "http://other.example/p", "types": ["ussd"]}}
    (p,) = FMT.plan(events, context(doc))
    assert (p.request.url, p.kind) == ("http://other.example/p", "dinstar.ussd")
    off = {PUSH_DOC: {"url": "", "types": ["ussd"]}}  # `simgate gateway push --url ""`
    assert FMT.plan(events, context(off)) == []
    unset = DinstarPush(DinstarSettings(sn=SN), {"sim": LINE})
    assert unset.plan(events, context(NO_DOC)) == []


def test_items_are_sent_in_requests_of_at_most_100() -> None:
    records = [_gw(id=i, state=State.SENT) for i in range(1, 251)]
    pushes = FMT.plan([changed(m, Event.SUBMIT_OK) for m in records], context(NO_DOC))
    sizes = [len(b["sms_result"]) for b in _bodies(pushes)]
    assert sizes == [100, 100, 50]
    ids = [item["number"] for b in _bodies(pushes) for item in b["sms_result"]]
    assert len(ids) == 250


def test_other_dialects_calls_and_unfinished_states_owe_nothing() -> None:
    call: CallRecord = dataclasses.replace(SEED_CALL)
    events: list[DomainEvent] = [
        changed(message(), Event.REPORT_DELIVERED),
        changed(_gw(state=State.QUEUED), Event.SUBMIT_RETRY),
        CallFinished(call, T0, ACCOUNT, None),
    ]
    assert FMT.plan(events, context(NO_DOC)) == []
