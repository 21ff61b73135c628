"""The url_* push format (spec §3.4, §7), pure: exact URLs, and the format on domain events."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from simgate.api.dialects.openvox.push import OpenVoxPush, incoming_url, report_url, result_url
from simgate.api.dialects.openvox.pushconfig import PushConfig, doc_key
from simgate.domain.events import DomainEvent, PortChanged
from simgate.domain.messages import Event, State
from simgate.domain.records import MessageRecord
from simgate.lines.sim import SimLine
from simgate.push.base import PlannedPush
from simgate.settings import SimLineSettings
from simgate.testing.clock import FakeClock
from tests.support.push_events import ACCOUNT, T0, changed, context, inbound, message, received

CFG = PushConfig(
    enable=1,
    reports_enable=1,
    results_enable=1,
    url_http="http",
    url_host="receiver.example",
    url_port="8080",
    url_path="/sms/in.php",
    url_from_num="f",
    url_to_num="t",
    url_portname="pn",
    url_message="m",
    url_time="tm",
    url_imsi="i",
    url_status="s",
    url_user_defined="token=abc",
)


def test_incoming_push_follows_the_firmware_template() -> None:
    url = incoming_url(
        CFG,
        sender="+8613900000001",
        port=2,
        port_name="gsm-1.2",
        text="héllo & bye=1",
        time="2026-01-01 08:00:00",
        imsi="460001234567890",
    )
    assert url == (
        "http://receiver.example:8080/sms/in.php?f=%2B8613900000001&t=2&pn=gsm-1.2"
        "&m=h%C3%A9llo%20%26%20bye%3D1&tm=2026-01-01%2008%3A00%3A00&i=460001234567890&token=abc"
    )


def test_result_push_carries_destination_id_and_sent_or_fail() -> None:
    url = result_url(
        CFG,
        recipient="8613800138000",
        port=3,
        message_id=2601010000000000007,
        imsi="4600",
        time="2026-01-01 00:00:00",
        sent=True,
    )
    assert url == (
        "http://receiver.example:8080/sms/in.php?f=8613800138000&t=3&id=2601010000000000007"
        "&i=4600&m=&tm=2026-01-01%2000%3A00%3A00&type=SMS-Status-Result&s=Sent&token=abc"
    )
    failed = result_url(CFG, recipient="1", port=0, message_id=1, imsi="", time="t", sent=False)
    assert dict(parse_qsl(urlsplit(failed).query, keep_blank_values=True))["s"] == "Fail"


def test_report_push_has_sentence_status_and_cause() -> None:
    url = report_url(
        CFG,
        recipient="8613800138000",
        port=1,
        imsi="4600",
        time="2026-01-01 00:00:05",
        delivered=False,
        cause="65",
    )
    assert url == (
        "http://receiver.example:8080/sms/in.php?f=8613800138000&t=1&i=4600&m="
        "&tm=2026-01-01%2000%3A00%3A05&type=SMS-Status-Report"
        "&s=Message%20not%20received%20on%20handset&cause=65&token=abc"
    )
    ok = report_url(CFG, recipient="1", port=1, imsi="", time="t", delivered=True, cause="0")
    assert "s=Message%20received%20on%20handset&" in ok


def test_empty_names_are_dropped_and_trailing_ampersand_kept() -> None:
    cfg = PushConfig(url_host="h", url_port="", url_path="/", url_imsi="", url_user_defined="")
    url = incoming_url(cfg, sender="1", port=1, port_name="p", text="x", time="t", imsi="SECRET")
    assert url == "http://h/?num=1&port=1&portname=p&message=x&time=t&"
    assert "SECRET" not in url


def test_ipv6_host_is_bracketed() -> None:
    cfg = PushConfig(url_host="2001:db8::1", url_port="80", url_path="/p")
    assert cfg.base_url() == "http://[2001:db8::1]:80/p"


# ---- the format on hand-built domain events (no database) --------------------------------
LINE = SimLine("sim", SimLineSettings(ports=4), FakeClock())
FMT = OpenVoxPush({"sim": LINE})
DOCS: dict[str, dict[str, Any] | None] = {doc_key(ACCOUNT.id): CFG.as_dict()}


def _ov(m: MessageRecord) -> MessageRecord:
    return dataclasses.replace(m, dialect="openvox")


def _query(p: PlannedPush) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(p.request.url).query, keep_blank_values=True))


def test_format_asks_for_the_config_of_the_accounts_concerned() -> None:
    other = dataclasses.replace(ACCOUNT, id=2)
    events: list[DomainEvent] = [
        received(inbound()),
        changed(_ov(message(account_id=2)), Event.SUBMIT_OK, account=other),
        changed(message(account_id=3), Event.SUBMIT_OK),  # another dialect's message
        changed(_ov(message(account_id=4)), Event.SUBMIT_RETRY),  # not a result
    ]
    assert FMT.docs(events) == {doc_key(1), doc_key(2)}
    assert FMT.docs([PortChanged("sim", 0, True, T0)]) == set()


def test_incoming_sms_becomes_one_get_with_the_port_name_and_account_time() -> None:
    r = inbound(port=2)
    (p,) = FMT.plan([received(r)], context(DOCS))
    assert (p.request.method, p.request.body, p.request.headers) == ("GET", None, {})
    assert (p.order_key, p.kind, p.signing_secret) == (
        f"inbound:{r.id}",
        "openvox.incoming",
        None,
    )
    assert p.request.url.startswith("http://receiver.example:8080/sms/in.php?")
    assert p.request.url.endswith("&token=abc")
    assert _query(p) == {
        "f": r.sender,
        "t": "3",  # 1-based (§3.4a)
        "pn": LINE.ports()[2].name,
        "m": r.text,
        "tm": "2026-01-01 08:00:03",  # §7 format, Asia/Shanghai
        "i": r.imsi,
        "token": "abc",
    }


def test_send_results_and_reports_follow_the_switches() -> None:
    m = _ov(message(port=0, status_code=65))
    imsi = LINE.ports()[0].imsi
    sent, failed, report = FMT.plan(
        [
            changed(m, Event.SUBMIT_OK, at_ms=T0),
            changed(m, Event.SUBMIT_FAILED, at_ms=T0),
            changed(m, Event.REPORT_FAILED, at_ms=T0 + 5_000),
        ],
        context(DOCS),
    )
    assert _query(sent) == {
        "f": m.recipient,
        "t": "1",
        "id": str(m.id),
        "i": imsi,
        "m": "",
        "tm": "2026-01-01 08:00:00",
        "type": "SMS-Status-Result",
        "s": "Sent",
        "token": "abc",
    }
    assert (sent.order_key, sent.kind) == (f"msg:{m.id}", "openvox.result")
    assert _query(failed)["s"] == "Fail"
    assert _query(report) == {
        "f": m.recipient,
        "t": "1",
        "i": imsi,
        "m": "",
        "tm": "2026-01-01 08:00:05",
        "type": "SMS-Status-Report",
        "s": "Message not received on handset",
        "cause": "65",
        "token": "abc",
    }
    assert (report.order_key, report.kind) == (f"msg:{m.id}", "openvox.report")
    results_only = {doc_key(1): {**CFG.as_dict(), "reports_enable": 0}}
    events = [changed(m, Event.SUBMIT_OK), changed(m, Event.REPORT_DELIVERED)]
    assert [p.kind for p in FMT.plan(events, context(results_only))] == ["openvox.result"]
    reports_only = {doc_key(1): {**CFG.as_dict(), "results_enable": 0}}
    assert [p.kind for p in FMT.plan(events, context(reports_only))] == ["openvox.report"]


def test_expiry_is_a_failed_result_only_for_a_message_never_sent() -> None:
    unsent = _ov(message(state=State.EXPIRED, sent_ms=None, port=None, line=None))
    (p,) = FMT.plan([changed(unsent, Event.EXPIRE)], context(DOCS))
    assert (_query(p)["s"], _query(p)["t"], _query(p)["i"]) == ("Fail", "0", "")
    waited = _ov(message(state=State.EXPIRED))
    assert FMT.plan([changed(waited, Event.EXPIRE)], context(DOCS)) == []


def test_nothing_without_a_host_an_enabled_switch_or_this_dialect() -> None:
    m = _ov(message())
    events: list[DomainEvent] = [received(inbound()), changed(m, Event.SUBMIT_OK)]
    assert FMT.plan(events, context({doc_key(1): None})) == []  # never configured
    off = {doc_key(1): {**CFG.as_dict(), "enable": 0, "results_enable": 0}}
    assert FMT.plan(events, context(off)) == []
    assert FMT.plan([changed(message(), Event.SUBMIT_OK)], context(DOCS)) == []


def test_incoming_first_in_id_order_then_messages_in_event_order() -> None:
    a, b = _ov(message(id=2)), _ov(message(id=1))
    early, late = inbound(id=10), inbound(id=20)
    events: list[DomainEvent] = [
        changed(a, Event.SUBMIT_OK),
        received(late),
        changed(b, Event.SUBMIT_OK),
        received(early),
        received(late),
    ]
    keys = [p.order_key for p in FMT.plan(events, context(DOCS))]
    assert keys == ["inbound:10", "inbound:20", "msg:2", "msg:1"]
