"""The url_* push formats (spec §3.4, §7) as pure functions: exact URLs."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from simgate.api.dialects.openvox.push import incoming_url, report_url, result_url
from simgate.api.dialects.openvox.pushconfig import PushConfig

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
